"""`multipart/form-data` bodies (RFC 7578): text fields and file parts, byte for byte.

A small parser of its own because the body is already read (the size limits need it whole) and a
file's bytes, CRLFs inside quoted CSV fields included, must reach the import exactly as sent.
"""

from dataclasses import dataclass, field
from email.message import Message

from worker.sandbox.envelope import ApiError

MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class Part:
    """One part: its form name, its filename if it is a file, its content type and bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Form:
    """A parsed multipart body, parts in the order sent."""

    parts: tuple[Part, ...] = field(default_factory=tuple)

    def fields(self) -> list[tuple[str, str]]:
        """The non-file parts as (name, text) pairs, for merging with query parameters."""
        return [
            (p.name, p.data.decode("utf-8", "replace")) for p in self.parts if p.filename is None
        ]

    def file(self, name: str) -> Part | None:
        """The first part called `name` (a file part or, from lax clients, a plain field)."""
        return next((p for p in self.parts if p.name == name), None)


def _header_params(value: str) -> Message:
    message = Message()
    message["content-type"] = value
    return message


def boundary(content_type_header: str) -> str | None:
    """The boundary of a `multipart/form-data` Content-Type header, or None if it is not one."""
    message = _header_params(content_type_header)
    if message.get_content_type() != MULTIPART:
        return None
    found = message.get_param("boundary")
    return found if isinstance(found, str) and found else None


def _part(raw: bytes) -> Part:
    head, sep, data = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ApiError("613", "Invalid multipart request")
    disposition, content_type = "", "text/plain"
    for line in head.decode("utf-8", "replace").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            disposition = value.strip()
        elif key.strip().lower() == "content-type":
            content_type = value.strip()
    params = Message()
    params["content-disposition"] = disposition
    name = params.get_param("name", header="content-disposition")
    filename = params.get_param("filename", header="content-disposition")
    if not isinstance(name, str) or not name:
        raise ApiError("613", "Invalid multipart request")
    return Part(name, filename if isinstance(filename, str) else None, content_type, data)


def parse(content_type_header: str, body: bytes) -> Form:
    """Split a multipart body into its parts; ApiError 613 when it is not well formed."""
    mark = boundary(content_type_header)
    if mark is None:
        raise ApiError("613", "Invalid multipart request")
    delimiter = b"--" + mark.encode("latin-1")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        raise ApiError("613", "Invalid multipart request")
    chunks[0] = first[len(delimiter) :]
    parts: list[Part] = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            return Form(tuple(parts))
        if not chunk.startswith(b"\r\n"):
            raise ApiError("613", "Invalid multipart request")
        parts.append(_part(chunk[2:]))
    raise ApiError("613", "Invalid multipart request")  # no closing delimiter
