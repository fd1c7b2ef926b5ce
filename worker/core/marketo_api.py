"""Marketo's API as the worker relies on it: the result codes it acts on, and the batch limit.

Pure: constants only, so that the core, the Marketo edge (worker/marketo) and the sandbox that
emulates Marketo (worker/sandbox) may all import it. docs/marketo-facts.md gives each fact's
source. Marketo quotes its codes (`"601"`), so they are strings here too.
"""

from __future__ import annotations

from typing import Final

MAX_BATCH: Final = 300  # records, ids and filter values per call

# Request-level codes (`errors[]`): the whole call failed and nothing was done.
ACCESS_INVALID: Final = "601"  # the access token is unknown, revoked or long expired
ACCESS_EXPIRED: Final = "602"  # the first use of a lapsed access token; later uses get 601
RATE_LIMITED: Final = "606"  # the instance's rolling window of calls is full
DAILY_QUOTA_REACHED: Final = "607"
CONCURRENCY_LIMITED: Final = "615"  # too many calls in flight
ASSET_NOT_FOUND: Final = "702"  # Asset API: no record with that id
BLOCKED_BY_RULE: Final = "709"  # Asset API: a business rule refused it (e.g. a name taken)
NOT_A_LOOKUP_FIELD: Final = "1011"  # the field is not supported as lookupField or filterType
LIST_NOT_FOUND: Final = "1013"
# bulk only (never answered by the REST endpoints)
IMPORT_QUEUE_FULL: Final = "1016"  # "Too many imports": 10 bulk imports queued or importing
EXPORT_LIMITED: Final = "1029"  # extract queue full, daily file allocation spent, or already queued

# Record-level codes (`reasons[]` of a skipped record): one record's outcome, not the call's.
LEAD_NOT_FOUND: Final = "1004"  # the lead id is gone from Marketo (the person merged or deleted)
NOT_IN_LIST: Final = "1015"  # removing a non-member: the list already is as wanted

# Request-level codes by what a client does about them.
TOKEN_REJECTED: Final = frozenset({ACCESS_INVALID, ACCESS_EXPIRED})  # renew the token, retry
THROTTLED: Final = frozenset({RATE_LIMITED, CONCURRENCY_LIMITED})  # back off, retry
QUOTA_EXHAUSTED: Final = frozenset({DAILY_QUOTA_REACHED})  # wait for the quota day's reset
# time-outs, unavailable, system errors and lock waits: retry with backoff
UNAVAILABLE: Final = frozenset({"502", "604", "608", "611", "614", "713", "719"})
