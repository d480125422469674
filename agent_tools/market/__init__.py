"""Market data: the XNYS calendar, Alpha Vantage, AI-Trader price files and a synthetic market."""
