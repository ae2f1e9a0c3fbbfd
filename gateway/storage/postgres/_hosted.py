"""The PostgreSQL store: the OAuth 2.0 provider's records, domains, resource servers, hosted UI customization,
passkeys, federation, managed login branding and terms documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from gateway.storage.base import (
    IdentityProviderRecord,
    ManagedLoginBrandingRecord,
    NotFound,
    OAuthRecord,
    RefreshTokenRecord,
    TermsRecord,
    TokenFamilyRecord,
    UsedCodeRecord,
    VersionConflict,
)
from gateway.storage.postgres._base import Connection, PostgresBase, index_text, translate
from gateway.storage.sqlite import (
    _CLIENT_EXISTS,
    _CODE_MARKED,
    _IDENTIFIER_UNIQUE,
    _IDP_UNIQUE,
    _INSERT_FAMILY_ONCE,
    _INSERT_IDP,
    _INSERT_IDP_IDENTIFIER,
    _INSERT_OAUTH,
    _INSERT_REFRESH,
    _INSERT_USED_CODE,
    _OAUTH_UNIQUE,
    _REFRESH_UNIQUE,
    _TERMS_UNIQUE,
    _UPDATE_BRANDING,
    _UPDATE_TERMS,
    _dumps,
    _family_params,
    _idp_params,
    _oauth_params,
    _refresh_params,
)


async def _insert_identifiers(store: PostgresBase, provider: IdentityProviderRecord, conn: Connection) -> None:
    """The provider's IdpIdentifiers, inside the transaction ``conn`` writes the provider in."""
    for identifier in provider.idp_identifiers:
        await store._insert_one(
            _INSERT_IDP_IDENTIFIER,
            (provider.pool_id, identifier, provider.name),
            _IDENTIFIER_UNIQUE,
            "pool",
            conn,
        )


class HostedMixin(PostgresBase):
    # --- the OAuth 2.0 provider's records ---------------------------------------------------------------

    async def put_oauth_record(self, record: OAuthRecord) -> None:
        await self._insert_one(_INSERT_OAUTH, _oauth_params(record), _OAUTH_UNIQUE, "pool")

    async def burn_code(self, used: UsedCodeRecord) -> bool:
        # The marker's primary key decides: of concurrent burns exactly one inserts it (one statement).
        return bool(await self._fetch(_INSERT_USED_CODE, (used.code_hash, used.origin_jti, used.expires_at)))

    async def start_code_family(
        self,
        code_hash: str,
        family: TokenFamilyRecord,
        refresh: RefreshTokenRecord | None,
        *,
        app_client_id: str | None = None,
    ) -> bool:
        async def start(conn: Connection) -> bool:
            # A marker (a burnt code) uses the code up; otherwise the family's primary
            # key decides: of concurrent redemptions exactly one inserts it.
            if await self._fetch(_CODE_MARKED, (code_hash,), conn):
                return False
            # The app client is read in the family's own transaction: a family is stored before the client's
            # deletion commits (and revoked by it) or refused after.
            if app_client_id is not None and not await self._fetch(
                _CLIENT_EXISTS, (app_client_id, family.pool_id), conn
            ):
                raise NotFound("client")
            if not await self._fetch(_INSERT_FAMILY_ONCE, _family_params(family, app_client_id), conn):
                return False
            if refresh is not None:
                await self._execute(_INSERT_REFRESH, _refresh_params(refresh), conn)
            return True

        try:
            return await self._write(start)
        except asyncpg.IntegrityConstraintViolationError as exc:
            error = translate(exc, _REFRESH_UNIQUE, "pool")
            if error is exc:
                raise
            raise error from exc

    # --- passkeys -----------------------------------------------------------------------------------------

    async def update_webauthn_sign_count(self, pool_id: str, credential_id: str, seen: int, new: int) -> bool:
        # "sign_count = seen" decides the race: a concurrent UPDATE re-checks it on the committed row.
        rows = await self._fetch(
            "UPDATE webauthn_credentials SET sign_count = ? WHERE pool_id = ? AND credential_id = ? "
            "AND sign_count = ? RETURNING 1",
            (new, pool_id, credential_id, seen),
        )
        return bool(rows)

    # --- federation -------------------------------------------------------------------------------------

    async def mark_assertion_seen(self, key: str, expires_at: float) -> bool:
        """As the SQLite store's, under index_text(key): an assertion ID is the IdP's to choose, of any length."""
        return await super().mark_assertion_seen(index_text(key), expires_at)

    async def create_identity_provider(self, provider: IdentityProviderRecord) -> None:
        async def create(conn: Connection) -> None:
            await self._insert_one(_INSERT_IDP, _idp_params(provider), _IDP_UNIQUE, "pool", conn)
            await _insert_identifiers(self, provider, conn)

        await self._write(create)

    async def update_identity_provider(self, provider: IdentityProviderRecord) -> IdentityProviderRecord:
        key = (provider.pool_id, provider.name)
        params = (
            provider.provider_type,
            _dumps(provider.details),
            _dumps(provider.attribute_mapping),
            _dumps(provider.idp_identifiers),
            _dumps(provider.settings),
            provider.created_at,
            provider.updated_at,
            *key,
            provider.version,
        )

        async def update(conn: Connection) -> None:
            updated = await self._fetch(
                "UPDATE identity_providers SET provider_type = ?, details = ?, attribute_mapping = ?, "
                "idp_identifiers = ?, settings = ?, created_at = ?, updated_at = ?, version = version + 1 "
                "WHERE pool_id = ? AND name = ? AND version = ? RETURNING 1",
                params,
                conn,
            )
            if not updated:
                exists = await self._fetch("SELECT 1 FROM identity_providers WHERE pool_id = ? AND name = ?", key, conn)
                raise VersionConflict(provider.name) if exists else NotFound(provider.name)
            await self._execute("DELETE FROM idp_identifiers WHERE pool_id = ? AND provider_name = ?", key, conn)
            await _insert_identifiers(self, provider, conn)

        await self._write(update)
        return replace(provider, version=provider.version + 1)

    async def delete_identity_provider(self, pool_id: str, name: str) -> bool:
        async def delete(conn: Connection) -> bool:
            # Identifiers follow by ON DELETE CASCADE; links name the provider without a foreign key.
            deleted = await self._fetch(
                "DELETE FROM identity_providers WHERE pool_id = ? AND name = ? RETURNING 1", (pool_id, name), conn
            )
            await self._execute(
                "DELETE FROM provider_links WHERE pool_id = ? AND provider_name = ?", (pool_id, name), conn
            )
            return bool(deleted)

        return await self._write(delete)

    # --- managed login branding ---------------------------------------------------------------------------

    async def update_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> ManagedLoginBrandingRecord:
        r = record
        params = (
            int(r.use_cognito_provided_values),
            None if r.settings is None else _dumps(r.settings),
            _dumps(r.assets),
            r.updated_at,
            r.pool_id,
            r.branding_id,
            r.version,
        )
        if await self._fetch(_UPDATE_BRANDING, params):
            return replace(r, version=r.version + 1)
        # Only to choose the error: the version check itself was the UPDATE's WHERE clause.
        exists = await self._fetch(
            "SELECT 1 FROM managed_login_brandings WHERE pool_id = ? AND id = ?", (r.pool_id, r.branding_id)
        )
        raise VersionConflict(r.branding_id) if exists else NotFound("branding")

    # --- terms documents -----------------------------------------------------------------------------------

    async def update_terms(self, record: TermsRecord) -> None:
        r = record
        params = (r.name, r.source, r.enforcement, _dumps(r.links), r.updated_at, r.pool_id, r.terms_id)
        try:
            updated = await self._fetch(_UPDATE_TERMS, params)
        except asyncpg.IntegrityConstraintViolationError as exc:
            error = translate(exc, _TERMS_UNIQUE, "terms")
            if error is exc:
                raise
            raise error from exc
        if not updated:
            raise NotFound("terms")
