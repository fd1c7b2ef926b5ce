"""The Marketo sandbox: an aiohttp stand-in for Marketo, for tests, the demo and benchmarks.

Imports nothing from the rest of `worker/`; see `cli.py` for its command line.
"""
