"""Metrics, their intervals, the leaderboard, reports and charts."""
