"""Services: the only way the UI and the CLI change data. Each takes a session and never commits."""
