"""Leads: the four sync actions, lookupField, per-record reasons, get by filter/id, delete.

Leads as in docs/marketo-facts.md, Leads.
"""

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

LEADS = "/rest/v1/leads.json"


def _reason(result: dict[str, object]) -> str:
    assert result["status"] == "skipped"
    reasons = result["reasons"]
    assert isinstance(reasons, list)
    return str(reasons[0]["code"])


async def test_create_or_update_creates_then_updates(api: Api) -> None:
    """The default action creates an unknown email and updates it the second time."""
    first = await api.sync({"email": "ann@example.com", "firstName": "Ann"})
    second = await api.sync({"email": "ANN@example.com ", "lastName": "Lee"})
    assert first[0]["status"] == "created"
    assert second[0] == {"id": first[0]["id"], "status": "updated"}
    lead = api.sandbox.store.leads[first[0]["id"]]
    assert lead.fields["firstName"] == "Ann"
    assert lead.fields["lastName"] == "Lee"


async def test_create_only_skips_existing_with_1005(api: Api) -> None:
    """createOnly refuses an email that already exists."""
    await api.sync({"email": "a@example.com"})
    result = await api.sync({"email": "a@example.com"}, action="createOnly")
    assert _reason(result[0]) == "1005"


async def test_update_only_skips_unknown_with_1004(api: Api) -> None:
    """updateOnly refuses an email that matches no lead."""
    result = await api.sync({"email": "ghost@example.com"}, action="updateOnly")
    assert _reason(result[0]) == "1004"
    assert "id" not in result[0]


async def test_update_with_several_matches_skips_with_1007(api: Api) -> None:
    """When two leads share the lookup value, an update is impossible (1007)."""
    await api.sync(
        {"email": "twin@example.com"}, {"email": "twin@example.com"}, action="createDuplicate"
    )
    result = await api.sync({"email": "twin@example.com", "city": "Lyon"})
    assert _reason(result[0]) == "1007"


async def test_create_duplicate_always_creates(api: Api) -> None:
    """createDuplicate creates a new lead even when the email exists."""
    first = await api.sync({"email": "dup@example.com"})
    second = await api.sync({"email": "dup@example.com"}, action="createDuplicate")
    assert second[0]["status"] == "created"
    assert second[0]["id"] != first[0]["id"]


async def test_unknown_field_skips_with_1006(api: Api) -> None:
    """A record naming a field the catalogue lacks is skipped with 1006."""
    result = await api.sync({"email": "f@example.com", "shoeSize": 42})
    assert _reason(result[0]) == "1006"


async def test_bad_value_type_skips_with_1003(api: Api) -> None:
    """A non-boolean value for a boolean field is skipped with 1003."""
    result = await api.sync({"email": "b@example.com", "unsubscribed": "maybe"})
    assert _reason(result[0]) == "1003"


async def test_read_only_ecids_cannot_be_written(api: Api) -> None:
    """Writing the read-only `ecids` field is refused with 1003."""
    result = await api.sync({"email": "e@example.com", "ecids": "123"})
    assert _reason(result[0]) == "1003"


async def test_id_with_create_only_skips_with_1003(api: Api) -> None:
    """`id` may be sent only with updateOnly."""
    result = await api.sync({"id": 5, "email": "i@example.com"}, action="createOnly")
    assert _reason(result[0]) == "1003"


async def test_update_only_by_id_lookup_updates(api: Api) -> None:
    """updateOnly with lookupField id updates the lead with that id."""
    created = await api.sync({"email": "byid@example.com"})
    lead_id = created[0]["id"]
    result = await api.sync({"id": lead_id, "city": "Oslo"}, action="updateOnly", lookupField="id")
    assert result[0] == {"id": lead_id, "status": "updated"}


async def test_duplicate_key_in_one_input_skips_the_second_with_1036(api: Api) -> None:
    """The second record carrying the same email in one request is skipped with 1036."""
    result = await api.sync({"email": "same@example.com"}, {"email": "same@example.com"})
    assert result[0]["status"] == "created"
    assert _reason(result[1]) == "1036"


async def test_results_are_in_input_order(api: Api) -> None:
    """Per-record results line up with the input records."""
    result = await api.sync({"email": "1@example.com"}, {"bogus": 1}, {"email": "3@example.com"})
    assert [r["status"] for r in result] == ["created", "skipped", "created"]


async def test_more_than_300_records_is_a_request_error(api: Api) -> None:
    """301 records fail the whole request and create nothing."""
    records = [{"email": f"{i}@example.com"} for i in range(301)]
    answer = await api.post(LEADS, {"input": records})
    assert answer.body["success"] is False
    assert answer.body["errors"][0]["code"] == "1003"
    assert api.sandbox.store.leads == {}


async def test_get_by_filter_projects_fields_with_nulls(api: Api) -> None:
    """Requested fields without a value come back as null; `id` is always present."""
    await api.sync({"email": "p@example.com", "firstName": "Pat"})
    answer = await api.get(
        LEADS, filterType="email", filterValues="p@example.com", fields="firstName,city,ecids"
    )
    assert answer.body["result"] == [{"id": 1, "firstName": "Pat", "city": None, "ecids": None}]


async def test_get_by_filter_default_fields(api: Api) -> None:
    """Without `fields`, the documented default projection is returned."""
    await api.sync({"email": "q@example.com"})
    answer = await api.get(LEADS, filterType="email", filterValues="q@example.com")
    assert set(answer.body["result"][0]) == {
        "id",
        "email",
        "updatedAt",
        "createdAt",
        "firstName",
        "lastName",
    }


async def test_get_by_filter_no_match_is_empty_success(api: Api) -> None:
    """No match is success with an empty result and no warnings."""
    answer = await api.get(LEADS, filterType="email", filterValues="none@example.com")
    assert answer.body == {"requestId": answer.body["requestId"], "result": [], "success": True}


async def test_get_by_filter_accepts_repeated_values(api: Api) -> None:
    """filterValues may be repeated as well as comma-joined."""
    await api.sync({"email": "r1@example.com"}, {"email": "r2@example.com"})
    query = [
        ("filterType", "email"),
        ("filterValues", "r1@example.com"),
        ("filterValues", "r2@example.com"),
    ]
    answer = await api.call("GET", LEADS, params=query)
    assert [r["email"] for r in answer.body["result"]] == ["r1@example.com", "r2@example.com"]


async def test_get_by_filter_more_than_300_values_is_an_error(api: Api) -> None:
    """More than 300 filter values fail the request."""
    values = ",".join(str(i) for i in range(301))
    answer = await api.get(LEADS, filterType="id", filterValues=values)
    assert answer.body["success"] is False


async def test_get_by_filter_pages_with_next_page_token(unlimited: Api) -> None:
    """batchSize pages the matches; the last page has no nextPageToken."""
    await unlimited.sync(
        *[{"email": "page@example.com"} for _ in range(5)], action="createDuplicate"
    )
    query = {"filterType": "email", "filterValues": "page@example.com", "batchSize": 2}
    seen: list[int] = []
    token = None
    for _ in range(4):
        params = {**query, **({"nextPageToken": token} if token else {})}
        answer = await unlimited.get(LEADS, **params)
        seen += [r["id"] for r in answer.body["result"]]
        token = answer.body.get("nextPageToken")
        if token is None:
            break
    assert seen == [1, 2, 3, 4, 5]


async def test_more_than_1000_matches_is_1003(unlimited: Api) -> None:
    """A filter matching more than 1,000 leads fails with 1003."""
    for _ in range(4):
        await unlimited.sync(
            *[{"email": "many@example.com"} for _ in range(251)], action="createDuplicate"
        )
    answer = await unlimited.get(LEADS, filterType="email", filterValues="many@example.com")
    assert answer.body["errors"][0]["code"] == "1003"


async def test_unknown_projection_field_is_1006(api: Api) -> None:
    """Asking for a field that does not exist fails with 1006."""
    answer = await api.get(LEADS, filterType="email", filterValues="x@example.com", fields="nope")
    assert answer.body["errors"][0]["code"] == "1006"


async def test_get_lead_by_id(api: Api) -> None:
    """A lead is read by id; an unknown id is an empty success."""
    created = await api.sync({"email": "g@example.com"})
    found = await api.get(f"/rest/v1/lead/{created[0]['id']}.json", fields="email")
    missing = await api.get("/rest/v1/lead/999.json")
    assert found.body["result"] == [{"id": created[0]["id"], "email": "g@example.com"}]
    assert missing.body["result"] == []


async def test_describe_lists_read_only_ecids(api: Api) -> None:
    """describe reports `ecids` as a read-only REST string field without a SOAP name."""
    answer = await api.get("/rest/v1/leads/describe.json")
    ecids = next(f for f in answer.body["result"] if f["rest"]["name"] == "ecids")
    assert ecids["dataType"] == "string"
    assert ecids["rest"]["readOnly"] is True
    assert "soap" not in ecids


async def test_describe2_lists_searchable_fields_as_arrays(api: Api) -> None:
    """describe2 has one `API Lead` object with nested searchable fields."""
    answer = await api.get("/rest/v1/leads/describe2.json")
    result = answer.body["result"][0]
    assert result["name"] == "API Lead"
    assert ["email"] in result["searchableFields"]
    assert {"name": "ecids"}.items() <= next(
        f for f in result["fields"] if f["name"] == "ecids"
    ).items()


async def test_delete_leads_by_json_body(api: Api) -> None:
    """POST leads/delete.json deletes known ids and skips unknown ones with 1004."""
    created = await api.sync({"email": "del@example.com"})
    answer = await api.post(
        "/rest/v1/leads/delete.json", {"input": [{"id": created[0]["id"]}, {"id": 77}]}
    )
    assert answer.body["result"][0]["status"] == "deleted"
    assert _reason(answer.body["result"][1]) == "1004"
    assert api.sandbox.store.leads == {}


async def test_delete_leads_with_method_override(api: Api) -> None:
    """POST leads.json?_method=DELETE with a JSON body deletes, as recorded."""
    created = await api.sync({"email": "ovr@example.com"})
    answer = await api.post(LEADS, {"input": [{"id": created[0]["id"]}]}, _method="DELETE")
    assert answer.body["result"] == [{"id": created[0]["id"], "status": "deleted"}]


async def test_get_by_filter_with_method_get_form_body(api: Api) -> None:
    """POST ?_method=GET with a form body reads leads like a GET (the 414 workaround)."""
    await api.sync({"email": "long@example.com"})
    form = {"filterType": "email", "filterValues": "long@example.com"}
    answer = await api.call("POST", LEADS, params={"_method": "GET"}, data=form)
    assert answer.body["result"][0]["email"] == "long@example.com"
