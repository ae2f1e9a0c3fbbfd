"""A pool's attribute schema: Cognito's standard attributes, custom attributes, and value checks.

The standard set and its defaults are those DescribeUserPool returns for a new pool (OpenID Connect Core
§5.1 standard claims plus ``sub``, ``identities`` and the ``*_verified`` flags).
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from gateway.errors import InvalidParameterException

_STRING = {"MinLength": "0", "MaxLength": "2048"}

STANDARD_ATTRIBUTES: tuple[str, ...] = (
    "sub",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "identities",
)

MAX_CUSTOM_ATTRIBUTES = 50
_CUSTOM_NAME = re.compile(r"^[\w\-]{1,20}$")
# Matched with fullmatch: "$" would also accept a trailing newline, and an address with one is another
# alias than the same address without (uniqueness), while mail still reaches the address without it.
# E.164 digits are ASCII ones (str.isdigit and Unicode \d also take other scripts' digits).
_E164 = re.compile(r"\+[1-9][0-9]{4,14}")
# RFC 5322's specials (section 3.2.3) are kept out: unquoted they turn one value into an address list, a display
# name or a comment, and a mail "to" it reaches other mailboxes than the one the attribute names.
_EMAIL = re.compile(r'[^@\s<>()\[\],;:\\"]+@[^@\s<>()\[\],;:\\"]+\.[^@\s<>()\[\],;:\\"]+')
# A decimal number as written in JSON and Java (RFC 8259 §6, sign and leading dot allowed). Python's float()
# alone is not the check: it also reads "nan", "inf", " 5 " and "1_000", and a NaN passes every Min/MaxValue.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


# Standard attributes Cognito sets itself (verification flags, federated identities): none may be required.
_NEVER_REQUIRED = frozenset({"email_verified", "phone_number_verified", "identities"})
# OIDC Core §5.1 birthdate: ISO 8601 YYYY-MM-DD, the year 0000 when it is withheld (the 10 characters Cognito's
# schema allows rule out the year-only form).
_BIRTHDATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def _standard(name: str) -> dict[str, Any]:
    if name in ("email_verified", "phone_number_verified"):
        return {
            "Name": name,
            "AttributeDataType": "Boolean",
            "DeveloperOnlyAttribute": False,
            "Mutable": True,
            "Required": False,
        }
    if name == "updated_at":
        return {
            "Name": name,
            "AttributeDataType": "Number",
            "DeveloperOnlyAttribute": False,
            "Mutable": True,
            "Required": False,
            "NumberAttributeConstraints": {"MinValue": "0"},
        }
    constraints = dict(_STRING)
    if name == "sub":
        constraints = {"MinLength": "1", "MaxLength": "2048"}
    elif name == "birthdate":
        constraints = {"MinLength": "10", "MaxLength": "10"}
    return {
        "Name": name,
        "AttributeDataType": "String",
        "DeveloperOnlyAttribute": False,
        "Mutable": name != "sub",
        "Required": name == "sub",
        "StringAttributeConstraints": constraints,
    }


def build_schema(requested: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The full SchemaAttributes of a new pool from CreateUserPool's ``Schema``."""
    schema = {name: _standard(name) for name in STANDARD_ATTRIBUTES}
    custom: list[dict[str, Any]] = []
    seen: set[str] = set()
    for attr in requested or ():
        name = str(attr.get("Name", ""))
        if name in schema:
            merged = schema[name]
            if name in seen:
                # Two entries for one attribute: which Required or constraints hold would depend on their order.
                raise InvalidParameterException(f"Duplicate attribute name in the schema: {name}")
            seen.add(name)
            given_type = attr.get("AttributeDataType")
            if given_type is not None and given_type != merged["AttributeDataType"]:
                # A standard attribute's type is the OIDC claim's (SchemaAttributeType: standard attributes keep
                # their data type); values are checked, and tokens carry them, as that type.
                raise InvalidParameterException(
                    f"Attribute {name} is a standard attribute of type {merged['AttributeDataType']}; "
                    f"its AttributeDataType cannot be {given_type}."
                )
            if name == "sub":
                continue
            if attr.get("Required") and name in _NEVER_REQUIRED:
                # Set by Cognito, never given at sign-up: a pool requiring one could sign nobody up.
                raise InvalidParameterException(f"The standard attribute {name} cannot be required.")
            for key in ("Required", "Mutable"):
                if key in attr:
                    merged[key] = bool(attr[key])
            if "StringAttributeConstraints" in attr and merged["AttributeDataType"] == "String":
                merged["StringAttributeConstraints"] = _string_constraints(
                    name, attr["StringAttributeConstraints"] or {}, merged["StringAttributeConstraints"]
                )
        else:
            custom.append(custom_attribute(attr))
    _check_custom_count(custom)
    return list(schema.values()) + custom


def custom_attribute(attr: Mapping[str, Any]) -> dict[str, Any]:
    """A custom attribute's schema entry, named ``custom:<name>``. A developer-only one keeps that name (Cognito
    calls it ``dev:custom:<name>``); only administrators write it, and it is read-only to app clients (they
    read it in GetUser and the ID token), as in Cognito."""
    name = str(attr.get("Name", ""))
    if name.startswith("custom:"):
        name = name[len("custom:") :]
    if not _CUSTOM_NAME.match(name):
        raise InvalidParameterException(f"Invalid custom attribute name: {name}")
    data_type = attr.get("AttributeDataType", "String")
    if data_type not in ("String", "Number", "DateTime", "Boolean"):
        raise InvalidParameterException(f"Invalid AttributeDataType for custom attribute {name}")
    if attr.get("Required"):
        raise InvalidParameterException("Required custom attributes are not supported currently.")
    entry: dict[str, Any] = {
        "Name": f"custom:{name}",
        "AttributeDataType": data_type,
        "DeveloperOnlyAttribute": bool(attr.get("DeveloperOnlyAttribute", False)),
        "Mutable": bool(attr.get("Mutable", True)),
        "Required": False,
    }
    if data_type == "String":
        given = attr.get("StringAttributeConstraints") or {}
        entry["StringAttributeConstraints"] = _string_constraints(entry["Name"], given, _STRING)
    elif data_type == "Number":
        entry["NumberAttributeConstraints"] = _number_constraints(
            entry["Name"], attr.get("NumberAttributeConstraints") or {}
        )
    return entry


# The model types these constraints as free strings; they are checked here, where they enter a schema, so
# that a later attribute write never meets a limit it cannot read.
_MAX_DIGITS = 18


def _string_constraints(name: str, given: Mapping[str, Any], base: Mapping[str, str]) -> dict[str, str]:
    """StringAttributeConstraints as stored: whole-number lengths, at most 2048, MinLength <= MaxLength."""
    lengths: dict[str, int] = {}
    for key in ("MinLength", "MaxLength"):
        value = given.get(key)
        text = str(base[key] if value is None else value)
        if not (text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS):
            raise InvalidParameterException(f"{key} of attribute {name} must be a whole number.")
        lengths[key] = int(text)
    if lengths["MaxLength"] > 2048:
        raise InvalidParameterException("String attributes cannot have a length of more than 2048")
    if lengths["MinLength"] > lengths["MaxLength"]:
        raise InvalidParameterException(f"MinLength of attribute {name} cannot be greater than its MaxLength.")
    return {key: str(length) for key, length in lengths.items()}


def _number_constraints(name: str, given: Mapping[str, Any]) -> dict[str, str]:
    """NumberAttributeConstraints as stored: finite numbers, MinValue <= MaxValue."""
    limits: dict[str, str] = {}
    numbers: dict[str, float] = {}
    for key in ("MinValue", "MaxValue"):
        value = given.get(key)
        if value is None:
            continue
        text = str(value)
        number = _number(text) if len(text) <= 64 else None
        if number is None:
            raise InvalidParameterException(f"{key} of attribute {name} must be a number.")
        limits[key], numbers[key] = text, number
    if len(numbers) == 2 and numbers["MinValue"] > numbers["MaxValue"]:
        raise InvalidParameterException(f"MinValue of attribute {name} cannot be greater than its MaxValue.")
    return limits


def _check_custom_count(custom: list[dict[str, Any]]) -> None:
    names = [c["Name"] for c in custom]
    if len(set(names)) != len(names):
        raise InvalidParameterException("Duplicate custom attribute names are not allowed.")
    if len(custom) > MAX_CUSTOM_ATTRIBUTES:
        raise InvalidParameterException(f"A user pool can have at most {MAX_CUSTOM_ATTRIBUTES} custom attributes.")


def add_custom_attributes(schema: list[dict[str, Any]], new: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    updated = copy.deepcopy(schema)
    existing = {a["Name"] for a in updated}
    additions = [custom_attribute(a) for a in new]
    for attr in additions:
        if attr["Name"] in existing:
            raise InvalidParameterException(f"Existing attribute already has name {attr['Name']}.")
    updated.extend(additions)
    _check_custom_count([a for a in updated if a["Name"].startswith("custom:")])
    return updated


def schema_index(schema: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(a["Name"]): a for a in schema}


def validate_attribute_values(
    schema: Iterable[Mapping[str, Any]],
    attributes: Mapping[str, str],
    *,
    creating: bool,
    admin: bool,
) -> None:
    """Check names, mutability, types and constraints of attributes being written.

    Raises InvalidParameterException with Cognito's wording for the first problem found."""
    index = schema_index(schema)
    for name, value in attributes.items():
        entry = index.get(name)
        if entry is None:
            raise InvalidParameterException(f"Attribute does not exist in the schema: {name}")
        if name == "sub":
            raise InvalidParameterException("Cannot modify the non-mutable attribute sub")
        if not creating and not entry.get("Mutable", True):
            raise InvalidParameterException(f"Cannot modify the non-mutable attribute {name}")
        if not creating and entry.get("Required") and value == "":
            # An empty value takes the attribute away, which a required attribute must keep.
            raise InvalidParameterException(f"user.{name}: Required attribute cannot be deleted.")
        if entry.get("DeveloperOnlyAttribute") and not admin:
            raise InvalidParameterException(f"Cannot modify developer-only attribute {name}")
        if not creating and value == "":
            continue  # a deletion: no value to check against the attribute's type and limits
        _check_value(name, value, entry)


def _check_value(name: str, value: str, entry: Mapping[str, Any]) -> None:
    data_type = entry.get("AttributeDataType", "String")
    if data_type == "String":
        limits = entry.get("StringAttributeConstraints") or {}
        if len(value) > int(limits.get("MaxLength", 2048)) or len(value) < int(limits.get("MinLength", 0)):
            raise InvalidParameterException(f"Invalid length for attribute {name}")
        if name == "email" and value and not _EMAIL.fullmatch(value):
            raise InvalidParameterException("Invalid email address format.")
        if name == "phone_number" and value and not _E164.fullmatch(value):
            raise InvalidParameterException("Invalid phone number format.")
        if name == "birthdate" and value and not _is_birthdate(value):
            raise InvalidParameterException("Invalid birthdate: it must be a date in the format YYYY-MM-DD.")
    elif data_type == "Boolean":
        if value.lower() not in ("true", "false"):
            raise InvalidParameterException(f"Invalid value for boolean attribute {name}")
    elif data_type == "Number":
        number = _number(value)
        if number is None:
            raise InvalidParameterException(f"Invalid value for number attribute {name}")
        limits = entry.get("NumberAttributeConstraints") or {}
        if "MinValue" in limits and number < float(limits["MinValue"]):
            raise InvalidParameterException(f"Value of attribute {name} is below its minimum")
        if "MaxValue" in limits and number > float(limits["MaxValue"]):
            raise InvalidParameterException(f"Value of attribute {name} is above its maximum")
    elif data_type == "DateTime":
        try:
            datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidParameterException(f"Invalid value for datetime attribute {name}") from exc


def value_fits(name: str, value: str, entry: Mapping[str, Any]) -> bool:
    """Whether ``value`` passes the checks of :func:`validate_attribute_values` on the values of ``name``
    (type, format, limits): for values no caller gave, such as an upstream profile's mapped claims."""
    try:
        _check_value(name, value, entry)
    except InvalidParameterException:
        return False
    return True


def canonical_values(schema: Iterable[Mapping[str, Any]], attributes: Mapping[str, str]) -> dict[str, str]:
    """Checked attribute values as stored: a Boolean as ``true``/``false`` in lower case, which is how
    Gatehouse reads ``email_verified`` and the other flags (a stored "True" would read as unverified)."""
    index = schema_index(schema)
    return {
        name: value.lower() if (index.get(name) or {}).get("AttributeDataType") == "Boolean" else value
        for name, value in attributes.items()
    }


def is_phone_number(value: str) -> bool:
    """Whether ``value`` is an E.164 phone number, the form of ``phone_number``."""
    return _E164.fullmatch(value) is not None


def _is_birthdate(value: str) -> bool:
    """A real calendar date as YYYY-MM-DD; year 0000 (withheld) is read as a leap year, so 0000-02-29 is one."""
    match = _BIRTHDATE.fullmatch(value)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    try:
        date(year or 2000, month, day)
    except ValueError:
        return False
    return True


def _number(text: str) -> float | None:
    """The finite value of a decimal number literal, or None for anything else."""
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def required_attributes(schema: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(a["Name"]) for a in schema if a.get("Required") and a["Name"] != "sub"]


def claim_text(value: Any, *, saml: bool = False) -> str | None:
    """An upstream claim as a user pool attribute value (Cognito stores strings). A SAML attribute with several
    values is written as Cognito writes it, ``[value1, value2]``, which applications parsing Cognito's
    attributes expect. A JSON array claim of an OIDC or social IdP (``groups: ["a", "b"]``) is written as its
    JSON text, as Cognito writes it, so that a value holding a comma stays one value."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        if not saml:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        parts = [p for p in (claim_text(v) for v in value) if p is not None]
        return "[" + ", ".join(parts) + "]"
    return str(value)
