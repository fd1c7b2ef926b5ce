"""Parsing and classification of Marketo's envelope: every code group, the quirks, garbage."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.core.ids import LeadId
from worker.errors import (
    MarketoError,
    MarketoUnavailable,
    QuotaExhausted,
    RateLimited,
    RequestRejected,
    TokenExpired,
)
from worker.marketo import responses as rs


def _failure(code: str | int, *, asset: bool = False) -> bytes:
    body: dict[str, object] = {
        "requestId": "e42b#14272d07d78",
        "success": False,
        "errors": [{"code": code, "message": "m"}],
    }
    if asset:
        body["warnings"] = []
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("601", TokenExpired),
        ("602", TokenExpired),
        ("606", RateLimited),
        ("615", RateLimited),
        ("607", QuotaExhausted),
        ("604", MarketoUnavailable),
        ("608", MarketoUnavailable),
        ("611", MarketoUnavailable),
        ("614", MarketoUnavailable),
        ("713", MarketoUnavailable),
        ("719", MarketoUnavailable),
        ("502", MarketoUnavailable),
        ("603", RequestRejected),
        ("605", RequestRejected),
        ("609", RequestRejected),
        ("610", RequestRejected),
        ("612", RequestRejected),
        ("701", RequestRejected),
        ("709", RequestRejected),
        ("710", RequestRejected),
        ("711", RequestRejected),
        ("1003", RequestRejected),
        ("1013", RequestRejected),
    ],
)
def test_request_level_codes_map_to_their_error_class(code: str, kind: type[MarketoError]) -> None:
    """Each documented request-level code maps to the error class the client acts on."""
    error = rs.classify(200, _failure(code))
    assert type(error) is kind
    assert error.code == code


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, MarketoUnavailable),
        (502, MarketoUnavailable),
        (503, MarketoUnavailable),
        (504, MarketoUnavailable),
        (429, RateLimited),
        (413, RequestRejected),
        (414, RequestRejected),
        (401, RequestRejected),
        (404, RequestRejected),
    ],
)
def test_http_statuses_map_to_their_error_class(status: int, kind: type[MarketoError]) -> None:
    """HTTP-level failures are classified by status, whatever the (HTML) body says."""
    error = rs.classify(status, b"<html><body>Bad Gateway</body></html>")
    assert type(error) is kind
    assert error.code == f"http_{status}"


def test_lead_db_success_without_errors_or_warnings_is_success() -> None:
    """Lead DB success bodies omit errors and warnings; that is still success."""
    body = b'{"requestId":"1568#178b202751a","result":[],"success":true}'
    assert rs.classify(200, body) is None


def test_non_json_body_on_http_200_is_unavailable() -> None:
    """A proxy's HTML page with status 200 is treated as Marketo being unavailable."""
    error = rs.classify(200, b"<html>maintenance</html>")
    assert isinstance(error, MarketoUnavailable)


def test_success_false_without_errors_is_unavailable() -> None:
    """A failure without any code is retried rather than rejected (undocumented shape)."""
    assert isinstance(rs.classify(200, b'{"success":false}'), MarketoUnavailable)


def test_integer_error_code_is_kept_as_a_string() -> None:
    """An unquoted code still classifies, and `code` stays Marketo's string form."""
    error = rs.classify(200, _failure(606))
    assert isinstance(error, RateLimited)
    assert error.code == "606"


def test_asset_failure_with_empty_warnings_is_classified() -> None:
    """Asset API failures carry `warnings: []` and classify like Lead DB ones."""
    assert isinstance(rs.classify(200, _failure("710", asset=True)), RequestRejected)


def test_parse_failure_keeps_the_request_id() -> None:
    """A request-level failure reports the requestId support asks for."""
    failure = rs.parse(rs.RECORDS, 200, _failure("611"))
    assert isinstance(failure, rs.Failure)
    assert failure.request_id == "e42b#14272d07d78"
    assert isinstance(failure.error, MarketoUnavailable)


def test_record_results_keep_order_ids_and_reasons() -> None:
    """Per-record results come back in order; skipped ones have reasons and no id."""
    body = orjson.dumps(
        {
            "requestId": "b1c2#1743e2bee36",
            "result": [
                {"id": 7, "status": "created"},
                {
                    "status": "skipped",
                    "reasons": [{"code": "1003", "message": "Invalid value for field 'x'"}],
                },
                {"id": 9, "status": "skipped", "reasons": [{"code": 1015, "message": "no"}]},
            ],
            "success": True,
        }
    )
    envelope = rs.parse(rs.RECORDS, 200, body)
    assert isinstance(envelope, rs.Envelope)
    results = rs.record_results(envelope.result or [])
    assert results == [
        rs.RecordResult("created", LeadId(7), ()),
        rs.RecordResult("skipped", None, (("1003", "Invalid value for field 'x'"),)),
        rs.RecordResult("skipped", LeadId(9), (("1015", "no"),)),
    ]


def test_asset_not_found_is_success_without_result() -> None:
    """The Asset API's "No assets found" answer parses with no result and the warning."""
    body = (
        b'{"success":true,"errors":[],"requestId":"888#178b2027952",'
        b'"warnings":["No assets found for the given search criteria."]}'
    )
    envelope = rs.parse(rs.ASSET_LISTS, 200, body)
    assert isinstance(envelope, rs.Envelope)
    assert envelope.result is None
    assert rs.has_no_assets_warning(envelope)


def test_lead_db_warning_objects_parse() -> None:
    """Lead DB warnings are objects with an integer code, unlike asset string warnings."""
    body = b'{"success":true,"result":[],"warnings":[{"code":1003,"message":"w"}]}'
    envelope = rs.parse(rs.ROWS, 200, body)
    assert isinstance(envelope, rs.Envelope)
    assert envelope.warnings == [rs.LeadDbWarning(1003, "w")]
    assert not rs.has_no_assets_warning(envelope)


def test_success_with_a_result_of_unknown_shape_is_rejected() -> None:
    """A success whose result does not fit cannot be fixed by retrying, so it is rejected."""
    failure = rs.parse(rs.RECORDS, 200, b'{"success":true,"result":[{"id":"seven"}]}')
    assert isinstance(failure, rs.Failure)
    assert isinstance(failure.error, RequestRejected)
    assert failure.error.code == "unexpected_result"


def test_paging_token_is_read() -> None:
    """`nextPageToken` is exposed for the paging loop."""
    envelope = rs.parse(rs.ROWS, 200, b'{"success":true,"result":[{"id":1}],"nextPageToken":"AB"}')
    assert isinstance(envelope, rs.Envelope)
    assert envelope.next_page_token == "AB"
    assert envelope.result == [{"id": 1}]


def test_describe2_fields_carry_updateable() -> None:
    """describe2 fields become FieldInfo with their updateable flag."""
    body = orjson.dumps(
        {
            "success": True,
            "result": [
                {
                    "name": "API Lead",
                    "searchableFields": [["email"]],
                    "fields": [
                        {"name": "email", "dataType": "email", "length": 255, "updateable": True},
                        {"name": "ecids", "dataType": "string", "updateable": False},
                    ],
                }
            ],
        }
    )
    envelope = rs.parse(rs.DESCRIBE2, 200, body)
    assert isinstance(envelope, rs.Envelope)
    assert rs.fields_from_describe2(envelope.result or []) == [
        rs.FieldInfo("email", "email", 255, True),
        rs.FieldInfo("ecids", "string", None, False),
    ]


def test_describe_skips_fields_without_rest_name() -> None:
    """describe.json fields without a `rest` block are unusable over REST and are left out."""
    body = orjson.dumps(
        {
            "success": True,
            "result": [
                {"id": 1, "dataType": "datetime", "rest": {"name": "createdAt", "readOnly": True}},
                {"id": 2, "dataType": "string", "soap": {"name": "Legacy", "readOnly": False}},
            ],
        }
    )
    envelope = rs.parse(rs.DESCRIBE, 200, body)
    assert isinstance(envelope, rs.Envelope)
    fields = rs.fields_from_describe(envelope.result or [])
    assert fields == [rs.FieldInfo("createdAt", "datetime", None, False)]


def test_folder_reference_type_comes_from_folder_id() -> None:
    """A folder's reference type ("Folder"/"Program") is taken from its folderId."""
    item = rs.AssetFolder(
        id=5, name="P", folder_type="Program", folder_id=rs.FolderRef(5, "Program")
    )
    assert rs.folder_info(item).ref_type == "Program"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_ENVELOPE_KEYS = st.sampled_from(
    ["success", "errors", "warnings", "result", "requestId", "nextPageToken", "code", "id"]
)
# stdlib json, unlike orjson, writes integers past 64 bits: garbage the decoder must survive.
_ENVELOPE_LIKE = st.dictionaries(_ENVELOPE_KEYS, _JSON, max_size=6).map(
    lambda d: json.dumps(d).encode()
)
_DECODERS: list[msgspec.json.Decoder[rs.Envelope[Any]]] = [
    rs.RECORDS,
    rs.ROWS,
    rs.ASSET_LISTS,
    rs.FOLDERS,
    rs.DESCRIBE2,
    rs.DESCRIBE,
    rs.USAGE,
]


@given(status=st.integers(min_value=-1, max_value=1000), body=st.binary() | _ENVELOPE_LIKE)
def test_classify_and_parse_never_raise(status: int, body: bytes) -> None:
    """Arbitrary bytes and statuses give None, an error or an envelope, never an exception."""
    error = rs.classify(status, body)
    assert error is None or isinstance(error, MarketoError)
    for decoder in _DECODERS:
        parsed: rs.Envelope[Any] | rs.Failure = rs.parse(decoder, status, body)
        assert isinstance(parsed, rs.Envelope | rs.Failure)
