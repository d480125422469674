"""Where prices and news come from: Alpha Vantage, AI-Trader files, synthetic data, calendars."""
