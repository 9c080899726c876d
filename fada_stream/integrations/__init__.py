"""Adapters for voice-bot frameworks; each imports its framework lazily, so they stay optional extras."""
