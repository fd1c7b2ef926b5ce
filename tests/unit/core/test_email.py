"""One definition of a valid email, shared by the CSV import and the event stream."""

from __future__ import annotations

import pytest

from worker.core.email import is_valid_email


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.com",
        "ann.lee+news@mail.example.co.uk",
        "o'brien@example.com",
        "ann@xn--bcher-kva.example",
        "ann@bücher.example",
        "bäd@example.com",  # Marketo refuses it with its own code: not ours to judge
        "a" * 64 + "@example.com",
        "a@" + "b" * 63 + ".com",
        "1@2.3",
        "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 60,  # 254 in all
    ],
)
def test_an_address_shaped_email_is_valid(email: str) -> None:
    """One "@", a clean local part and a dotted domain of host name labels make a valid email."""
    assert is_valid_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "not-an-email",
        "has space@example.com",
        "ann@example",
        "@example.com",
        "ann@",
        "ann@@example.com",
        "ann@b@example.com",
        "ann@example..com",
        "ann@.example.com",
        "ann@example.com.",
        "ann@-example.com",
        "ann@example-.com",
        "ann@exa_mple.com",
        "ann@exa mple.com",
        "ann\t@example.com",
        "ann\x00@example.com",
        "ann\x7f@example.com",
        "ann@example.com\n",
        "a" * 65 + "@example.com",
        "a@" + "b" * 64 + ".com",
        "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 61,  # 255 in all
    ],
)
def test_a_malformed_email_is_invalid(email: str) -> None:
    """Anything without one "@", with whitespace or controls, or a bad domain is refused."""
    assert not is_valid_email(email)
