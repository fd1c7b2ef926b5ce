"""Access tokens: minting, reuse until expiry, 602 then 601 after expiry, revocation.

Pure: time is passed in as `now_s` (monotonic).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from worker.sandbox.envelope import JSON_CONTENT_TYPE, Reply

SCOPE = "apiuser@sandbox.marketo.invalid"


@dataclass(slots=True)
class _Token:
    value: str
    expires_at_s: float
    expiry_reported: bool = False
    revoked: bool = False


class TokenBook:
    """The one custom service's tokens: the current one, and every earlier one for 601/602."""

    def __init__(self, client_id: str, client_secret: str, ttl_s: float) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_s = ttl_s
        self._tokens: dict[str, _Token] = {}
        self._current: _Token | None = None

    def issue(self, now_s: float) -> tuple[str, int]:
        """Return (token, expires_in): the same token until it expires, as Marketo does."""
        current = self._current
        if current is None or current.revoked or now_s >= current.expires_at_s:
            current = _Token(f"{uuid.uuid4()}:sb", now_s + self.ttl_s)
            self._tokens[current.value] = current
            self._current = current
        return current.value, max(0, int(current.expires_at_s - now_s - 1e-6))

    def check(self, token: str, now_s: float) -> str | None:
        """None if valid; "602" on the first use after expiry; "601" if unknown, revoked or seen."""
        found = self._tokens.get(token)
        if found is None or found.revoked:
            return "601"
        if now_s < found.expires_at_s:
            return None
        if found.expiry_reported:
            return "601"
        found.expiry_reported = True
        return "602"

    def revoke_all(self) -> None:
        """Invalidate every token (fault injection); the next identity call mints a new one."""
        for token in self._tokens.values():
            token.revoked = True


_TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str) -> Reply:
    body = orjson.dumps({"error": error, "error_description": description})
    return Reply(status, body, f"http{status}")


def token_reply(book: TokenBook, params: Mapping[str, str], now_s: float) -> Reply:
    """Answer `/identity/oauth/token` given its merged query and form parameters."""
    if params.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
    if params.get("client_id") != book.client_id:
        return _oauth_error(401, "unauthorized", "No client with requested id")
    if params.get("client_secret") != book.client_secret:
        return _oauth_error(401, "invalid_client", "Bad client credentials")
    token, expires_in = book.issue(now_s)
    body = {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": SCOPE}
    return Reply(200, orjson.dumps(body), "ok", JSON_CONTENT_TYPE)


def token_headers() -> Mapping[str, str]:
    """Extra headers real token responses carry."""
    return _TOKEN_HEADERS
