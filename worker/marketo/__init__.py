"""Marketo REST edge: client, response parsing and the call limiter."""
