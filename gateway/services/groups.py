"""Groups of a pool and their members: Cognito's CreateGroup ... ListUsersInGroup."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gateway.errors import GroupExistsException, LimitExceededException, ResourceNotFoundException
from gateway.services.pools import PoolView
from gateway.services.quotas import MAX_GROUPS_PER_POOL, MAX_GROUPS_PER_USER
from gateway.services.rule_groups import forget_grant
from gateway.storage.base import AlreadyExists, GroupRecord, Store, UserRecord


def group_type(group: GroupRecord) -> dict[str, Any]:
    """Cognito's GroupType."""
    result: dict[str, Any] = {
        "GroupName": group.name,
        "UserPoolId": group.pool_id,
        "CreationDate": group.created_at,
        "LastModifiedDate": group.updated_at,
    }
    if group.description is not None:
        result["Description"] = group.description
    if group.role_arn is not None:
        result["RoleArn"] = group.role_arn
    if group.precedence is not None:
        result["Precedence"] = group.precedence
    return result


class GroupService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(
        self, pool: PoolView, name: str, *, description: str | None, role_arn: str | None, precedence: int | None
    ) -> GroupRecord:
        if await self._store.count_groups(pool.id) >= MAX_GROUPS_PER_POOL:
            raise LimitExceededException(f"A user pool can have at most {MAX_GROUPS_PER_POOL} groups.")
        now = time.time()
        group = GroupRecord(
            pool_id=pool.id,
            name=name,
            description=description,
            role_arn=role_arn,
            precedence=precedence,
            created_at=now,
            updated_at=now,
        )
        try:
            await self._store.create_group(group)
        except AlreadyExists as exc:
            raise GroupExistsException("A group with the name already exists.") from exc
        return group

    async def get(self, pool: PoolView, name: str) -> GroupRecord:
        group = await self._store.get_group(pool.id, name)
        if group is None:
            raise ResourceNotFoundException("Group not found.")
        return group

    async def update(self, pool: PoolView, name: str, changes: Mapping[str, Any]) -> GroupRecord:
        """UpdateGroup: only the members given change."""
        group = await self.get(pool, name)
        if "Description" in changes:
            group.description = changes["Description"]
        if "RoleArn" in changes:
            group.role_arn = changes["RoleArn"]
        if "Precedence" in changes:
            group.precedence = changes["Precedence"]
        group.updated_at = time.time()
        await self._store.update_group(group)
        return group

    async def delete(self, pool: PoolView, name: str) -> None:
        if not await self._store.delete_group(pool.id, name):
            raise ResourceNotFoundException("Group not found.")

    async def list_page(
        self, pool: PoolView, next_token: str | None, limit: int
    ) -> tuple[list[GroupRecord], str | None]:
        page = await self._store.list_groups(pool.id, next_token, limit)
        return page.items, page.next_token

    async def add_user(self, pool: PoolView, user: UserRecord, name: str) -> None:
        """AdminAddUserToGroup: idempotent; refused once the user is in MAX_GROUPS_PER_USER other groups."""
        await self.get(pool, name)
        current = await self._store.list_groups_for_user(pool.id, user.username_key)
        if len(current) >= MAX_GROUPS_PER_USER and all(group.name != name for group in current):
            raise LimitExceededException(f"A user can belong to at most {MAX_GROUPS_PER_USER} groups.")
        await self._store.add_user_to_group(pool.id, user.username_key, name)
        # Added by hand: a claim -> group rule that granted it before may no longer take it away.
        await forget_grant(self._store, user, name)

    async def remove_user(self, pool: PoolView, user: UserRecord, name: str) -> None:
        await self.get(pool, name)
        await self._store.remove_user_from_group(pool.id, user.username_key, name)

    async def for_user(self, pool: PoolView, user: UserRecord) -> list[GroupRecord]:
        return await self._store.list_groups_for_user(pool.id, user.username_key)

    async def members(
        self, pool: PoolView, name: str, next_token: str | None, limit: int
    ) -> tuple[list[UserRecord], str | None]:
        await self.get(pool, name)
        page = await self._store.list_users_in_group(pool.id, name, next_token, limit)
        return page.items, page.next_token
