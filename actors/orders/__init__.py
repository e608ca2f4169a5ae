"""The ledger's room (the order manager): order lifecycle books, fills and positions, risk reservations, reports."""
