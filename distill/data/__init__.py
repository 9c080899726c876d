"""Procedural talking-head corpus: speech, text, visemes, faces."""
