"""The Marketo sandbox: an aiohttp stand-in for Marketo, for tests, the demo and benchmarks.

Of the rest of `worker/` it imports only `worker.core.marketo_api`, for the limit both sides must
agree on (MAX_BATCH). Its result codes stay written out beside Marketo's messages, an emulation
read from Marketo's documentation, so that a wrong code in the worker is caught against it, not
shared with it. See `cli.py` for its command line.
"""
