"""The router's room: the frozen route table, and the requests it forwards to one venue's breaker and adapter."""
