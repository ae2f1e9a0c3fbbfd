"""The hosted pages' form fields, held to the constraints the API holds the same values to.

A page stands for a user pools operation (sign-up for SignUp, the confirmation form for ConfirmSignUp, ...) but
calls the services directly, past the API's input validation (botocore's service model, gateway/api/model.py).
Without this check a page would store what the operation refuses: a username with a NUL, a line break or a
zero-width joiner (``alice`` + U+200D looks like ``alice``), or longer than UsernameType's 128 characters.
Each form is checked as its operation's input would be, and a refusal is an error on the page, in words a
person can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.api.model import ServiceModel
from gateway.errors import InvalidParameterException
from gateway.services.passwords import password_requirements

# UsernameType in botocore's model: 1 to 128 characters, each a letter, mark, symbol, digit or punctuation.
USERNAME_RULE = "Enter a username of 1 to 128 letters, digits, symbols or punctuation marks, without spaces."
_MEMBER_RULES = {
    "username": USERNAME_RULE,
    "password": "Enter a password of at most 256 characters, without spaces.",
    "confirmationCode": "Enter the code as you received it.",
}


def form_error(operation: str, params: Mapping[str, Any]) -> str | None:
    """What is wrong with ``params`` as ``operation``'s input (``cognito-idp``), for the page; None when
    the API would take it."""
    try:
        ServiceModel.load("cognito-idp").validate_input(operation, dict(params))
    except InvalidParameterException as exc:
        # The model's message names the member ('username', 'password', ...), AWS-style: say it plainly.
        for member, rule in _MEMBER_RULES.items():
            if f"at '{member}'" in exc.message:
                return rule
        return exc.message
    return None


def attribute_list(attributes: Mapping[str, str]) -> list[dict[str, str]]:
    """Attributes as the API's UserAttributes member (AttributeListType)."""
    return [{"Name": name, "Value": value} for name, value in attributes.items()]


# What a field must hold, told before it is filled in (WCAG 3.3.2, labels or instructions): the formats Cognito
# takes for these attributes (phone numbers in E.164, the OpenID Connect birthdate).
ATTRIBUTE_HINTS = {
    "phone_number": "With the country code, starting with +, for example +14155550123.",
    "birthdate": "As YYYY-MM-DD, for example 1990-04-21.",
}


def password_hint(policy: Mapping[str, Any] | None) -> str:
    """The pool's password policy in words, for the fields where a person chooses a password (WCAG 3.3.2)."""
    length, upper, lower, number, symbol = password_requirements(policy)
    kinds = [
        words
        for needed, words in (
            (upper, "an uppercase letter"),
            (lower, "a lowercase letter"),
            (number, "a number"),
            (symbol, "a symbol"),
        )
        if needed
    ]
    hint = f"At least {length} characters"
    if kinds:
        hint += ", with " + (", ".join(kinds[:-1]) + " and " + kinds[-1] if len(kinds) > 1 else kinds[0])
    return hint + "."
