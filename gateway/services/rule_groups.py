"""Group memberships that claim -> group rules grant, kept apart from the ones an administrator makes.

A provider's rules are re-applied at every sign-in through it (docs/federation.md, "Groups from upstream
claims"). To take a user out of a group when a rule stops matching -- or when the rule itself is changed or
removed by UpdateIdentityProvider -- without ever undoing an administrator's AdminAddUserToGroup, the user
record remembers which memberships rules granted: ``settings["rule_groups"] = {provider name: [groups]}``.

* A group a matching rule names is added, and recorded as granted, unless the user is in it already by hand
  (then it stays a hand-made membership: no rule will ever remove it).
* A group this provider granted whose rule no longer matches (or no longer exists) is removed, unless another
  provider's rules hold it too.
* AdminAddUserToGroup of a group a rule granted makes it hand-made (:func:`forget_grant`).

Memberships that existed before this bookkeeping count as hand-made: nothing is removed that a rule is not
known to have granted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from gateway.services.identity_providers import rule_matches
from gateway.services.quotas import MAX_GROUPS_PER_USER
from gateway.storage.base import NotFound, Store, UserRecord, VersionConflict

log = structlog.get_logger("gateway.federation")

SETTINGS_KEY = "rule_groups"


def grants_of(user: UserRecord) -> dict[str, set[str]]:
    """The user's rule-granted groups, per provider."""
    raw = user.settings.get(SETTINGS_KEY)
    if not isinstance(raw, Mapping):
        return {}
    return {str(p): {str(g) for g in groups} for p, groups in raw.items() if isinstance(groups, list)}


def matched_groups(rules: Iterable[Mapping[str, str]], claims: Mapping[str, Any]) -> set[str]:
    return {rule["group"] for rule in rules if rule_matches(rule, claims)}


async def apply_rules(
    store: Store, pool_id: str, provider: str, rules: list[dict[str, str]], claims: Mapping[str, Any], user: UserRecord
) -> UserRecord:
    """Make the user's rule-granted memberships from ``provider`` follow ``rules`` over ``claims``; returns the
    user record as stored afterwards."""
    grants = grants_of(user)
    granted = grants.get(provider, set())
    if not rules and not granted:
        return user
    matched = matched_groups(rules, claims)
    # A deleted provider's rules hold nothing any more (what they granted stays, as if made by hand).
    gone = {name for name in grants if name != provider and await store.get_identity_provider(pool_id, name) is None}
    for name in gone:
        del grants[name]
    others = set().union(*(groups for name, groups in grants.items() if name != provider))
    current = {group.name for group in await store.list_groups_for_user(pool_id, user.username_key)}
    now_granted: set[str] = set()
    # Taken out first, so a rule that stopped matching makes room for one that now matches.
    for group in sorted(granted - matched):
        if group not in others and group in current:
            await store.remove_user_from_group(pool_id, user.username_key, group)
            current.discard(group)
    for group in sorted(matched):
        if group in current:
            # Ours (or another provider's rule's) stays granted; a membership made by hand stays hand-made.
            if group in granted or group in others:
                now_granted.add(group)
            continue
        if len(current) >= MAX_GROUPS_PER_USER:
            # The sign-in goes on without it: the user's other memberships are no rule's to undo.
            log.warning("federation.group_limit", pool=pool_id, provider=provider, group=group)
            continue
        try:
            await store.add_user_to_group(pool_id, user.username_key, group)
        except NotFound:
            log.warning("federation.group_missing", pool=pool_id, provider=provider, group=group)
            continue
        now_granted.add(group)
        current.add(group)
    if now_granted != granted:
        log.info(
            "federation.rule_groups",
            pool=pool_id,
            provider=provider,
            username=user.username,
            added=sorted(now_granted - granted),
            removed=sorted(granted - now_granted),
        )
    return await _record(store, user, provider, now_granted, gone)


async def forget_grant(store: Store, user: UserRecord, group: str) -> None:
    """An administrator added ``user`` to ``group`` by hand: no rule may take it away any more."""
    if not any(group in groups for groups in grants_of(user).values()):
        return
    for _ in range(5):
        grants = {p: groups - {group} for p, groups in grants_of(user).items()}
        try:
            await store.update_user(_with_grants(user, grants))
            return
        except VersionConflict:
            fresh = await store.get_user(user.pool_id, user.username_key)
            if fresh is None:
                return
            user = fresh
        except NotFound:
            return


def _with_grants(user: UserRecord, grants: Mapping[str, set[str]]) -> UserRecord:
    settings = dict(user.settings)
    kept = {p: sorted(groups) for p, groups in sorted(grants.items()) if groups}
    if kept:
        settings[SETTINGS_KEY] = kept
    else:
        settings.pop(SETTINGS_KEY, None)
    user.settings = settings
    user.updated_at = time.time()
    return user


async def _record(store: Store, user: UserRecord, provider: str, groups: set[str], gone: set[str]) -> UserRecord:
    """Store ``groups`` as ``provider``'s grants, forgetting those of the deleted providers ``gone``."""
    for _ in range(5):
        current = grants_of(user)
        grants = {name: held for name, held in current.items() if name not in gone and name != provider}
        grants[provider] = groups
        if {k: v for k, v in grants.items() if v} == {k: v for k, v in current.items() if v}:
            return user
        try:
            return await store.update_user(_with_grants(user, grants))
        except VersionConflict:
            fresh = await store.get_user(user.pool_id, user.username_key)
            if fresh is None:
                return user
            user = fresh
        except NotFound:
            return user
    log.warning("federation.rule_groups_unrecorded", pool=user.pool_id, provider=provider, username=user.username)
    return user
