"""fada-stream: a real-time talking-avatar SDK."""
