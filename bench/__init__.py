"""Benchmarks of mongo-session-backends against raw pymongo and its peers."""
