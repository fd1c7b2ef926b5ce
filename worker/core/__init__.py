"""The pure core: decisions only. No I/O, no asyncio, no clocks (time is passed in)."""
