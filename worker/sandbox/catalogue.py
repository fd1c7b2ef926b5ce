"""The lead field catalogue behind describe/describe2, and the value checks Sync Leads applies.

Modelled on a real instance's describe.json, including the read-only `ecids`. Pure.
"""

import re
from dataclasses import dataclass

_INTEGER = re.compile(r"-?\d+\Z")
_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?\Z")
_TEXT_TYPES = frozenset({"string", "text", "email", "phone", "url", "reference"})
_PLAIN_TEXT_TYPES = frozenset({"string", "text", "phone", "url", "reference"})
_NUMBER_TYPES = frozenset({"float", "currency", "percent"})


@dataclass(frozen=True, slots=True)
class Field:
    """One lead field as describe reports it."""

    id: int
    name: str
    display_name: str
    data_type: str
    length: int | None = None
    read_only: bool = False
    soap_name: str | None = None
    searchable: bool = False


def _f(
    fid: int,
    name: str,
    display: str,
    dtype: str,
    *,
    soap: str | None = "",
    read_only: bool = False,
    searchable: bool = False,
) -> Field:
    length = 255 if dtype in {"string", "email", "phone", "url"} else None
    soap_name = name[0].upper() + name[1:] if soap == "" else soap
    return Field(fid, name, display, dtype, length, read_only, soap_name, searchable)


FIELDS: tuple[Field, ...] = (
    _f(1, "id", "Id", "integer", soap="Id", searchable=True),
    _f(2, "company", "Company Name", "string"),
    _f(3, "site", "Site", "string"),
    _f(4, "billingStreet", "Billing Address", "text"),
    _f(5, "billingCity", "Billing City", "string"),
    _f(6, "billingCountry", "Billing Country", "string"),
    _f(20, "salutation", "Salutation", "string"),
    _f(21, "firstName", "First Name", "string"),
    _f(22, "middleName", "Middle Name", "string"),
    _f(23, "lastName", "Last Name", "string"),
    _f(24, "email", "Email Address", "email", searchable=True),
    _f(25, "phone", "Phone Number", "phone"),
    _f(26, "mobilePhone", "Mobile Phone Number", "phone"),
    _f(27, "fax", "Fax Number", "phone"),
    _f(28, "title", "Job Title", "string"),
    _f(29, "contactCompany", "Contact Company", "reference", soap=None),
    _f(30, "dateOfBirth", "Date of Birth", "date"),
    _f(31, "address", "Address", "text"),
    _f(32, "city", "City", "string"),
    _f(33, "state", "State", "string"),
    _f(34, "country", "Country", "string"),
    _f(35, "postalCode", "Postal Code", "string"),
    _f(36, "website", "Website", "url"),
    _f(37, "originalSourceType", "Original Source Type", "string", read_only=True),
    _f(38, "unsubscribed", "Unsubscribed", "boolean"),
    _f(39, "emailInvalid", "Email Invalid", "boolean"),
    _f(40, "doNotCall", "Do Not Call", "boolean"),
    _f(41, "leadScore", "Lead Score", "integer"),
    _f(42, "leadStatus", "Lead Status", "string"),
    _f(43, "annualRevenue", "Annual Revenue", "currency"),
    _f(44, "numberOfEmployees", "Num Employees", "integer"),
    _f(45, "industry", "Industry", "string"),
    _f(46, "rating", "Lead Rating", "string"),
    _f(47, "leadSource", "Lead Source", "string"),
    _f(48, "anonymousIP", "Anonymous IP", "string"),
    _f(49, "leadPartitionId", "Lead Partition Id", "reference", searchable=True),
    _f(50, "cookies", "Cookies", "string", searchable=True),
    _f(51, "externalCompanyId", "External Company Id", "string", searchable=True),
    _f(52, "sfdcLeadId", "SFDC Lead Id", "string", read_only=True, searchable=True),
    _f(53, "sfdcContactId", "SFDC Contact Id", "string", read_only=True, searchable=True),
    _f(54, "twitterId", "Twitter Id", "string", searchable=True),
    _f(55, "linkedInId", "LinkedIn Id", "string", searchable=True),
    _f(56, "facebookId", "Facebook Id", "string", searchable=True),
    _f(57, "emailSuspended", "Email Suspended", "boolean"),
    _f(58, "priority", "Priority", "integer"),
    _f(59, "relativeScore", "Relative Score", "integer"),
    _f(60, "acquisitionProgramId", "Acquisition Program Id", "string", read_only=True),
    _f(61, "createdAt", "Created At", "datetime", read_only=True),
    _f(62, "updatedAt", "Updated At", "datetime", read_only=True),
    _f(63, "ecids", "ECIDs", "string", read_only=True, soap=None),
)
BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
SEARCHABLE: frozenset[str] = frozenset(f.name for f in FIELDS if f.searchable)
DEFAULT_FIELDS: tuple[str, ...] = ("id", "updatedAt", "lastName", "email", "createdAt", "firstName")


def _is_text(value: object) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _coerce_boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
        return value.lower() in {"true", "1"}
    return None


def _coerce_number(
    value: object, pattern: re.Pattern[str], kind: type[int] | type[float]
) -> object | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (kind is float and isinstance(value, float)):
        return kind(value)
    if isinstance(value, str) and pattern.match(value.strip()):
        return kind(value.strip())
    return None


def coerce(field: Field, value: object) -> tuple[bool, object]:
    """Return (valid, value to store) for a write to `field`; invalid means skipped 1003."""
    dtype = field.data_type
    if value is None or (type(value) is str and dtype in _PLAIN_TEXT_TYPES):
        return True, value  # the common case, first: a string into a text field
    if dtype == "email":
        return isinstance(value, str) and value.isascii(), value
    if dtype in _TEXT_TYPES:
        return _is_text(value), value if isinstance(value, str) else str(value)
    if dtype == "boolean":
        flag = _coerce_boolean(value)
        return flag is not None, flag
    if dtype == "integer":
        number = _coerce_number(value, _INTEGER, int)
        return number is not None, number
    if dtype in _NUMBER_TYPES:
        number = _coerce_number(value, _NUMBER, float)
        return number is not None, number
    pattern = _DATE if dtype == "date" else _DATETIME
    return isinstance(value, str) and pattern.match(value) is not None, value


def describe() -> list[object]:
    """The `result` of `GET /rest/v1/leads/describe.json`."""
    out: list[object] = []
    for f in FIELDS:
        item: dict[str, object] = {
            "id": f.id,
            "displayName": f.display_name,
            "dataType": f.data_type,
        }
        if f.length is not None:
            item["length"] = f.length
        item["rest"] = {"name": f.name, "readOnly": f.read_only}
        if f.soap_name is not None:
            item["soap"] = {"name": f.soap_name, "readOnly": f.read_only}
        out.append(item)
    return out


def describe2() -> list[object]:
    """The `result` of `GET /rest/v1/leads/describe2.json`: one `API Lead` object."""
    fields: list[dict[str, object]] = []
    for f in FIELDS:
        item: dict[str, object] = {"name": f.name, "displayName": f.display_name}
        item["dataType"] = f.data_type
        if f.length is not None:
            item["length"] = f.length
        item["updateable"] = not f.read_only
        item["crmManaged"] = f.name.startswith("sfdc")
        fields.append(item)
    searchable = [[f.name] for f in FIELDS if f.searchable]
    return [{"name": "API Lead", "searchableFields": searchable, "fields": fields}]
