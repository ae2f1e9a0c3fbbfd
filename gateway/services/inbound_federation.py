"""The inbound federation Lambda trigger: a pool's function reshapes what an external IdP said before it is mapped.

"Inbound federation Lambda trigger" (Cognito developer guide): on every federated sign-in, of new and returning
users alike, after the IdP's answer is verified and before the profile is created or updated, Cognito invokes
``LambdaConfig.InboundFederation`` (an InboundFederationLambdaType, whose only ``LambdaVersion`` is ``V1_0``) with
``triggerSource`` ``InboundFederation_ExternalProvider`` and the request::

    {"providerName": ..., "providerType": "OIDC" | "SAML" | "Facebook" | "Google" | "SignInWithApple"
                                          | "LoginWithAmazon",
     "attributes": {"tokenResponse": {...}, "idToken": {...}, "userInfo": {...}}   (OIDC and social providers)
                   {"samlResponse": {...}}                                          (SAML providers)}

The function answers ``response.userAttributesToMap``, "the user attributes to apply to the user profile":
"You must include ALL user attributes you want to retain ... Any attributes not included ... will be dropped";
"If you return an empty object {} ... all original attributes from the identity provider are retained
unchanged". They take the place of the IdP's attributes, and the provider's AttributeMapping is applied to them
as it was to the IdP's (the guide's examples hand back IdP names -- ``groups``, ``department`` -- for mapping).

What Gatehouse hands the function, as it holds it (:func:`request_attributes`):

- every value as text (the guide's event is all strings), written as AttributeMapping writes a claim, so that a
  function that hands the attributes back unchanged changes no profile; a JSON object claim as its JSON text;
- ``idToken``: the verified claims of an OIDC, Google or Sign in with Apple sign-in. Gatehouse checks an OIDC
  provider's userinfo answer (its ``sub`` must be the ID token's) and keeps it merged with the ID token's
  claims, the ID token's winning, so ``userInfo`` of an OIDC or Google sign-in holds those same claims;
  Facebook's and Login with Amazon's profile is their ``userInfo``, and Sign in with Apple's ``userInfo`` is the
  name and email its first sign-in posts (Apple has no userinfo endpoint);
- ``tokenResponse``: an empty object. Gatehouse keeps no upstream token once it has verified the sign-in, and
  never hands the IdP's access or refresh tokens to anyone;
- ``samlResponse``: the assertion's attributes, with ``NameID`` (and ``NameIDFormat``, ``SessionIndex``).

What the answer changes is the attributes alone: who signed in (the user name, the ``identities`` entry), the
checks of a link by verified email and the provider's claim -> group rules go by what the IdP itself said.
A function that raises refuses the sign-in before anything is stored (UserLambdaValidationException
``InboundFederation failed with error <message>.``, the hosted UI's ``error_description``); an answer whose
``userAttributesToMap`` is not an object of names to text (numbers and booleans are taken as their text, a null
value leaves the attribute out) is InvalidLambdaResponseException.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any, Final

from gateway.errors import InvalidLambdaResponseException
from gateway.services.pools import PoolView
from gateway.services.schema import claim_text
from gateway.services.triggers import TriggerService, trigger_event
from providers.base import Identity

__all__ = [
    "INBOUND_FEDERATION",
    "INBOUND_FEDERATION_SOURCE",
    "attributes_to_map",
    "inbound_federation",
    "request_attributes",
]

INBOUND_FEDERATION: Final = "InboundFederation"
INBOUND_FEDERATION_SOURCE: Final = "InboundFederation_ExternalProvider"
# The provider types whose sign-in carries a verified ID token.
_ID_TOKEN_TYPES: Final = frozenset({"OIDC", "Google", "SignInWithApple"})


def _text(value: Any, *, saml: bool) -> str | None:
    """A claim as text, as AttributeMapping writes it (:func:`gateway.services.schema.claim_text`), and an object,
    which AttributeMapping leaves out, as its JSON text: the function may still want it."""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return claim_text(value, saml=saml)


def _texts(claims: Mapping[str, Any], *, saml: bool = False) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in claims.items():
        text = _text(value, saml=saml)
        if text is not None:
            found[str(name)] = text
    return found


def request_attributes(identity: Identity) -> dict[str, dict[str, str]]:
    """``request.attributes`` for ``identity``: ``samlResponse`` for a SAML provider; ``tokenResponse``,
    ``idToken`` and ``userInfo`` for OIDC and social providers (see the module docstring for what each holds)."""
    if identity.provider_type == "SAML":
        return {"samlResponse": _texts(identity.claims, saml=True)}
    signed = {k: v for k, v in identity.claims.items() if k not in identity.unsigned_claims}
    if identity.provider_type == "SignInWithApple":
        unsigned = {k: v for k, v in identity.claims.items() if k in identity.unsigned_claims}
        return {"tokenResponse": {}, "idToken": _texts(signed), "userInfo": _texts(unsigned)}
    id_token = _texts(signed) if identity.provider_type in _ID_TOKEN_TYPES else {}
    return {"tokenResponse": {}, "idToken": id_token, "userInfo": _texts(identity.claims)}


def attributes_to_map(response: Mapping[str, Any]) -> dict[str, str] | None:
    """``response.userAttributesToMap``, checked: None when it is empty, null or left out (the IdP's attributes
    stand); InvalidLambdaResponseException when it is not an object of names to text."""
    answered = response.get("userAttributesToMap")
    if answered is None:
        return None
    if not isinstance(answered, Mapping):
        raise InvalidLambdaResponseException("Unrecognizable lambda output")
    if not answered:
        return None
    found: dict[str, str] = {}
    for name, value in answered.items():
        if not name or value is None:
            continue
        if isinstance(value, bool):
            found[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            found[name] = str(value)
        else:
            raise InvalidLambdaResponseException("Unrecognizable lambda output")
    return found


async def inbound_federation(
    triggers: TriggerService | None,
    pool: PoolView,
    identity: Identity,
    *,
    provider_name: str,
    username: str,
    client_id: str | None,
) -> Identity:
    """Run the pool's inbound federation function, if it has one, for a verified ``identity`` signing in as
    ``username``: the identity whose claims AttributeMapping is to read -- the function's ``userAttributesToMap``
    in place of the IdP's, or ``identity`` itself when the function hands back nothing."""
    if triggers is None or triggers.function(pool, INBOUND_FEDERATION) is None:
        return identity
    request = {
        "providerName": provider_name,
        "providerType": identity.provider_type,
        "attributes": request_attributes(identity),
    }
    event = trigger_event(
        pool,
        INBOUND_FEDERATION_SOURCE,
        username,
        request,
        client_id=client_id,
        response={"userAttributesToMap": {}},
    )
    answered = await triggers.invoke(pool, INBOUND_FEDERATION, event)
    mapped = attributes_to_map(answered)
    if mapped is None:
        return identity
    # Claims named as unsigned ones (Apple's first-login name) stay unsigned: they only ever fill in a new user.
    return dataclasses.replace(identity, claims=mapped, unsigned_claims=identity.unsigned_claims & frozenset(mapped))
