"""Market data values (quotes, trades) and the CSV readers for recorded data."""
