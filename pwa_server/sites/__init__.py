"""Relying web sites: their registration, API keys, rate limits, return URLs and webhooks."""
