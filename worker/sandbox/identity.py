"""Access tokens: minting, reuse until expiry, 602 then 601 after expiry, revocation.

An instance has one or more custom services, each owned by an API-only user (the token's
`scope`); a call is counted in the usage stats under the user whose token it carries.
Pure: time is passed in as `now_s` (monotonic).
"""

import uuid
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True, slots=True)
class ApiUser:
    """Another custom service: its credentials and the API-only user that owns it."""

    client_id: str
    client_secret: str
    user_id: str


class TokenBook:
    """A custom service's tokens: the current one, and every earlier one for 601/602."""

    def __init__(
        self, client_id: str, client_secret: str, ttl_s: float, user_id: str = SCOPE
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.ttl_s = ttl_s
        self.user_id = user_id
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

    def minted(self, token: str) -> bool:
        """Tell whether this service ever issued `token`."""
        return token in self._tokens

    def revoke_all(self) -> None:
        """Invalidate every token (fault injection); the next identity call mints a new one."""
        for token in self._tokens.values():
            token.revoked = True


class Services:
    """Every custom service of the instance; the first is the one the command line names."""

    def __init__(self, books: Sequence[TokenBook]) -> None:
        if not books:
            raise ValueError("an instance has at least one custom service")
        self.primary = books[0]
        self._books = {book.client_id: book for book in books}

    def book(self, client_id: str | None) -> TokenBook | None:
        """The service with this client id, if any."""
        return self._books.get(client_id or "")

    def check(self, token: str, now_s: float) -> tuple[str | None, str]:
        """(None, the owning user id) if valid; else ("601" or "602", "") as `TokenBook.check`."""
        for book in self._books.values():
            if book.minted(token):
                code = book.check(token, now_s)
                return code, book.user_id if code is None else ""
        return "601", ""

    def revoke_all(self) -> None:
        """Invalidate every service's tokens (fault injection)."""
        for book in self._books.values():
            book.revoke_all()


_TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str) -> Reply:
    body = orjson.dumps({"error": error, "error_description": description})
    return Reply(status, body, f"http{status}")


def token_reply(services: Services, params: Mapping[str, str], now_s: float) -> Reply:
    """Answer `/identity/oauth/token` given its merged query and form parameters."""
    if params.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")
    book = services.book(params.get("client_id"))
    if book is None:
        return _oauth_error(401, "unauthorized", "No client with requested id")
    if params.get("client_secret") != book.client_secret:
        return _oauth_error(401, "invalid_client", "Bad client credentials")
    token, expires_in = book.issue(now_s)
    body = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "scope": book.user_id,
    }
    return Reply(200, orjson.dumps(body), "ok", JSON_CONTENT_TYPE)


def token_headers() -> Mapping[str, str]:
    """Extra headers real token responses carry."""
    return _TOKEN_HEADERS
