"""Configuration and observability: settings, log format, metrics.

Imports nothing of ours: every other part of bot/ may import it.
"""
