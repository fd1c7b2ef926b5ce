"""What `run` does before it consumes: the checks against Marketo, each audience's list found or
created, and start-up's progress (its phase, its budget waits, giving up on SIGTERM).

`validate --online` and `resync` reuse the checks and the list resolution without creating.
"""
