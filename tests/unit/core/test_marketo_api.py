"""Marketo's result codes as the worker names them: quoted integers, each in one class at most."""

from __future__ import annotations

from itertools import combinations

from worker.core import marketo_api

CLASSES = {
    "TOKEN_REJECTED": marketo_api.TOKEN_REJECTED,
    "THROTTLED": marketo_api.THROTTLED,
    "QUOTA_EXHAUSTED": marketo_api.QUOTA_EXHAUSTED,
    "UNAVAILABLE": marketo_api.UNAVAILABLE,
}


def test_every_code_is_a_quoted_integer() -> None:
    """Marketo quotes its codes ("601"), and the constants are compared with what it sends."""
    public = (value for name, value in vars(marketo_api).items() if name.isupper())
    codes = [value for value in public if isinstance(value, str)]
    codes += [code for group in CLASSES.values() for code in group]
    assert len(codes) > len(CLASSES)
    assert all(code.isdigit() for code in codes), codes


def test_no_code_is_in_two_classes() -> None:
    """A request-level code calls for one reaction only: renew, back off, wait or retry."""
    overlaps = {(a, b) for (a, x), (b, y) in combinations(CLASSES.items(), 2) if x & y}
    assert overlaps == set()
