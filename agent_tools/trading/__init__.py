"""Trading rules and books: orders filled at the session's open, books valued at the close."""
