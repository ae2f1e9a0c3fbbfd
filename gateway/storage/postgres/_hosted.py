"""The PostgreSQL store: the OAuth 2.0 provider's records, domains, resource servers, hosted UI customization,
passkeys, federation, managed login branding and terms documents.

Each method keeps the promise :class:`gateway.storage.base.Store` states, as the SQLite store's does (its SQL and
row converters are reused where the dialects agree; see :mod:`gateway.storage.postgres._base`)."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import asyncpg

from gateway.storage.base import (
    DomainRecord,
    FederationRequestRecord,
    IdentityProviderRecord,
    ManagedLoginBrandingRecord,
    NotFound,
    OAuthRecord,
    Page,
    ProviderLinkRecord,
    RefreshTokenRecord,
    ResourceServerRecord,
    TermsRecord,
    TokenFamilyRecord,
    UICustomizationRecord,
    UsedCodeRecord,
    UserRecord,
    VersionConflict,
    WebAuthnCredentialRecord,
)
from gateway.storage.postgres._base import Connection, Params, PostgresBase, Row, translate
from gateway.storage.sqlite import (
    _BRANDING_UNIQUE,
    _CLIENT_EXISTS,
    _CODE_MARKED,
    _IDENTIFIER_UNIQUE,
    _IDP_UNIQUE,
    _INSERT_BRANDING,
    _INSERT_FAMILY_ONCE,
    _INSERT_IDP,
    _INSERT_IDP_IDENTIFIER,
    _INSERT_OAUTH,
    _INSERT_REFRESH,
    _INSERT_TERMS,
    _INSERT_USED_CODE,
    _LINK_UNIQUE,
    _LIST_IDPS,
    _LIST_SERVERS,
    _OAUTH_UNIQUE,
    _OAUTH_WIDTH,
    _OAUTH_WITH_USER,
    _REFRESH_UNIQUE,
    _TERMS_UNIQUE,
    _UPDATE_BRANDING,
    _UPDATE_TERMS,
    _WEBAUTHN_UNIQUE,
    BRANDING_COLUMNS,
    DOMAIN_COLUMNS,
    IDP_COLUMNS,
    LINK_COLUMNS,
    OAUTH_COLUMNS,
    SERVER_COLUMNS,
    TERMS_COLUMNS,
    UI_COLUMNS,
    WEBAUTHN_COLUMNS,
    _branding,
    _check_limit,
    _domain,
    _dumps,
    _family_params,
    _idp,
    _idp_params,
    _loads,
    _oauth,
    _oauth_params,
    _page,
    _PagedQuery,
    _placeholders,
    _provider_link,
    _qualified,
    _refresh_params,
    _server,
    _terms,
    _terms_params,
    _ui,
    _user,
    _webauthn,
)


async def _page_rows(
    store: PostgresBase, query: _PagedQuery, scope: Params, after: str | None, limit: int
) -> list[Row]:
    """The rows of one page of a keyset-paginated listing, ``limit`` + 1 of them (``_page`` makes the page)."""
    _check_limit(limit)
    if after is None:
        return await store._fetch(query.first, (*scope, limit + 1))
    return await store._fetch(query.after, (*scope, after, limit + 1))


async def _insert_identifiers(store: PostgresBase, provider: IdentityProviderRecord, conn: Connection) -> None:
    """The provider's IdpIdentifiers, inside the transaction ``conn`` writes the provider in."""
    for identifier in provider.idp_identifiers:
        await store._insert(
            _INSERT_IDP_IDENTIFIER,
            (provider.pool_id, identifier, provider.name),
            _IDENTIFIER_UNIQUE,
            "pool",
            conn,
        )


class HostedMixin(PostgresBase):
    # --- the OAuth 2.0 provider's records ---------------------------------------------------------------

    async def put_oauth_record(self, record: OAuthRecord) -> None:
        await self._insert(_INSERT_OAUTH, _oauth_params(record), _OAUTH_UNIQUE, "pool")

    async def get_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None:
        return await self._fetch_one(
            f"SELECT {OAUTH_COLUMNS} FROM oauth_records WHERE kind = ? AND key_hash = ?", (kind, key_hash), _oauth
        )

    async def get_oauth_record_with_user(
        self, kind: str, key_hash: str
    ) -> tuple[OAuthRecord, UserRecord | None] | None:
        rows = await self._fetch(_OAUTH_WITH_USER, (kind, key_hash))
        if not rows:
            return None
        row = rows[0]
        user_row = row[_OAUTH_WIDTH:]
        return _oauth(cast(Row, row[:_OAUTH_WIDTH])), _user(cast(Row, user_row)) if user_row[0] is not None else None

    async def take_oauth_record(self, kind: str, key_hash: str) -> OAuthRecord | None:
        return await self._fetch_one(
            f"DELETE FROM oauth_records WHERE kind = ? AND key_hash = ? RETURNING {OAUTH_COLUMNS}",
            (kind, key_hash),
            _oauth,
        )

    async def use_oauth_record(self, kind: str, key_hash: str, now: float) -> tuple[OAuthRecord, bool] | None:
        # "used_at IS NULL" in the UPDATE decides the race: a concurrent UPDATE waits for the row's lock, then
        # checks the condition again on the committed row, so only the first finds it.
        first = await self._fetch_one(
            f"UPDATE oauth_records SET used_at = ? WHERE kind = ? AND key_hash = ? AND used_at IS NULL "
            f"RETURNING {OAUTH_COLUMNS}",
            (now, kind, key_hash),
            _oauth,
        )
        if first is not None:
            return first, True
        later = await self._fetch_one(
            f"UPDATE oauth_records SET replayed = 1 WHERE kind = ? AND key_hash = ? RETURNING {OAUTH_COLUMNS}",
            (kind, key_hash),
            _oauth,
        )
        return (later, False) if later is not None else None

    async def burn_code(self, used: UsedCodeRecord) -> bool:
        # The marker's primary key decides: of concurrent burns exactly one inserts it (one statement).
        return bool(await self._fetch(_INSERT_USED_CODE, (used.code_hash, used.origin_jti, used.expires_at)))

    async def get_used_code(self, code_hash: str) -> UsedCodeRecord | None:
        return await self._fetch_one(
            "SELECT code_hash, origin_jti, expires_at FROM used_codes WHERE code_hash = ?",
            (code_hash,),
            lambda r: UsedCodeRecord(r[0], r[1], r[2]),
        )

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

    async def oauth_record_expiry(self, kind: str, key_hash: str) -> float | None:
        rows = await self._fetch(
            "SELECT expires_at FROM oauth_records WHERE kind = ? AND key_hash = ?", (kind, key_hash)
        )
        return float(rows[0][0]) if rows else None

    async def list_oauth_records(self, pool_id: str, username_key: str, kind: str) -> list[OAuthRecord]:
        rows = await self._fetch(
            f"SELECT {OAUTH_COLUMNS} FROM oauth_records WHERE pool_id = ? AND username_key = ? AND kind = ?",
            (pool_id, username_key, kind),
        )
        return [_oauth(row) for row in rows]

    async def delete_oauth_records(self, pool_id: str, username_key: str, kind: str) -> int:
        rows = await self._fetch(
            "DELETE FROM oauth_records WHERE pool_id = ? AND username_key = ? AND kind = ? RETURNING 1",
            (pool_id, username_key, kind),
        )
        return len(rows)

    # --- user pool domains ------------------------------------------------------------------------------

    async def create_domain(self, domain: DomainRecord) -> None:
        params = (domain.domain, domain.pool_id, _dumps(domain.settings), domain.created_at)
        await self._insert(
            f"INSERT INTO user_pool_domains ({DOMAIN_COLUMNS}) VALUES ({_placeholders(DOMAIN_COLUMNS)})",
            params,
            {"user_pool_domains.domain": "domain"},
            "pool",
        )

    async def get_domain(self, domain: str) -> DomainRecord | None:
        return await self._fetch_one(
            f"SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE domain = ?", (domain,), _domain
        )

    async def list_pool_domains(self, pool_id: str) -> list[DomainRecord]:
        rows = await self._fetch(
            f"SELECT {DOMAIN_COLUMNS} FROM user_pool_domains WHERE pool_id = ? ORDER BY domain", (pool_id,)
        )
        return [_domain(row) for row in rows]

    async def update_domain(self, domain: DomainRecord) -> None:
        rows = await self._fetch(
            "UPDATE user_pool_domains SET settings = ? WHERE domain = ? RETURNING 1",
            (_dumps(domain.settings), domain.domain),
        )
        if not rows:
            raise NotFound("domain")

    async def delete_domain(self, domain: str) -> bool:
        return bool(await self._fetch("DELETE FROM user_pool_domains WHERE domain = ? RETURNING 1", (domain,)))

    # --- resource servers -------------------------------------------------------------------------------

    async def create_resource_server(self, server: ResourceServerRecord) -> None:
        params = (
            server.pool_id,
            server.identifier,
            server.name,
            _dumps(server.scopes),
            server.created_at,
            server.updated_at,
        )
        await self._insert(
            f"INSERT INTO resource_servers ({SERVER_COLUMNS}) VALUES ({_placeholders(SERVER_COLUMNS)})",
            params,
            {"resource_servers.pool_id, resource_servers.identifier": "identifier"},
            "pool",
        )

    async def get_resource_server(self, pool_id: str, identifier: str) -> ResourceServerRecord | None:
        return await self._fetch_one(
            f"SELECT {SERVER_COLUMNS} FROM resource_servers WHERE pool_id = ? AND identifier = ?",
            (pool_id, identifier),
            _server,
        )

    async def update_resource_server(self, server: ResourceServerRecord) -> None:
        rows = await self._fetch(
            "UPDATE resource_servers SET name = ?, scopes = ?, updated_at = ? "
            "WHERE pool_id = ? AND identifier = ? RETURNING 1",
            (server.name, _dumps(server.scopes), server.updated_at, server.pool_id, server.identifier),
        )
        if not rows:
            raise NotFound("resource server")

    async def delete_resource_server(self, pool_id: str, identifier: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM resource_servers WHERE pool_id = ? AND identifier = ? RETURNING 1", (pool_id, identifier)
            )
        )

    async def list_resource_servers(self, pool_id: str, after: str | None, limit: int) -> Page[ResourceServerRecord]:
        rows = await _page_rows(self, _LIST_SERVERS, (pool_id,), after, limit)
        return _page(rows, limit, _server, lambda r: r.identifier)

    # --- hosted UI customization ------------------------------------------------------------------------

    async def put_ui_customization(self, record: UICustomizationRecord) -> None:
        params = (
            record.pool_id,
            record.client_id,
            record.css,
            record.image,
            record.image_type,
            record.created_at,
            record.updated_at,
        )
        await self._insert(
            f"INSERT INTO ui_customizations ({UI_COLUMNS}) VALUES ({_placeholders(UI_COLUMNS)}) "
            "ON CONFLICT (pool_id, client_id) DO UPDATE SET css = excluded.css, image = excluded.image, "
            "image_type = excluded.image_type, updated_at = excluded.updated_at",
            params,
            {},
            "pool",
        )

    async def get_ui_customization(self, pool_id: str, client_id: str) -> UICustomizationRecord | None:
        return await self._fetch_one(
            f"SELECT {UI_COLUMNS} FROM ui_customizations WHERE pool_id = ? AND client_id = ?",
            (pool_id, client_id),
            _ui,
        )

    async def delete_ui_customization(self, pool_id: str, client_id: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM ui_customizations WHERE pool_id = ? AND client_id = ? RETURNING 1", (pool_id, client_id)
            )
        )

    # --- passkeys -----------------------------------------------------------------------------------------

    async def add_webauthn_credential(self, credential: WebAuthnCredentialRecord) -> None:
        c = credential
        params = (
            c.pool_id,
            c.credential_id,
            c.username_key,
            c.public_key,
            c.sign_count,
            c.friendly_name,
            c.relying_party,
            c.attachment,
            _dumps(c.transports),
            c.created_at,
        )
        await self._insert(
            f"INSERT INTO webauthn_credentials ({WEBAUTHN_COLUMNS}) VALUES ({_placeholders(WEBAUTHN_COLUMNS)})",
            params,
            _WEBAUTHN_UNIQUE,
            "user",
        )

    async def get_webauthn_credential(self, pool_id: str, credential_id: str) -> WebAuthnCredentialRecord | None:
        return await self._fetch_one(
            f"SELECT {WEBAUTHN_COLUMNS} FROM webauthn_credentials WHERE pool_id = ? AND credential_id = ?",
            (pool_id, credential_id),
            _webauthn,
        )

    async def list_webauthn_credentials(self, pool_id: str, username_key: str) -> list[WebAuthnCredentialRecord]:
        rows = await self._fetch(
            f"SELECT {WEBAUTHN_COLUMNS} FROM webauthn_credentials WHERE pool_id = ? AND username_key = ? "
            "ORDER BY created_at, credential_id",
            (pool_id, username_key),
        )
        return [_webauthn(row) for row in rows]

    async def update_webauthn_sign_count(self, pool_id: str, credential_id: str, seen: int, new: int) -> bool:
        # "sign_count = seen" decides the race: a concurrent UPDATE re-checks it on the committed row.
        rows = await self._fetch(
            "UPDATE webauthn_credentials SET sign_count = ? WHERE pool_id = ? AND credential_id = ? "
            "AND sign_count = ? RETURNING 1",
            (new, pool_id, credential_id, seen),
        )
        return bool(rows)

    async def delete_webauthn_credential(self, pool_id: str, username_key: str, credential_id: str) -> bool:
        rows = await self._fetch(
            "DELETE FROM webauthn_credentials WHERE pool_id = ? AND username_key = ? AND credential_id = ? RETURNING 1",
            (pool_id, username_key, credential_id),
        )
        return bool(rows)

    # --- federation -------------------------------------------------------------------------------------

    async def create_identity_provider(self, provider: IdentityProviderRecord) -> None:
        async def create(conn: Connection) -> None:
            await self._insert(_INSERT_IDP, _idp_params(provider), _IDP_UNIQUE, "pool", conn)
            await _insert_identifiers(self, provider, conn)

        await self._write(create)

    async def get_identity_provider(self, pool_id: str, name: str) -> IdentityProviderRecord | None:
        return await self._fetch_one(
            f"SELECT {IDP_COLUMNS} FROM identity_providers WHERE pool_id = ? AND name = ?", (pool_id, name), _idp
        )

    async def get_identity_provider_by_identifier(self, pool_id: str, identifier: str) -> IdentityProviderRecord | None:
        return await self._fetch_one(
            f"SELECT {_qualified(IDP_COLUMNS, 'p')} FROM idp_identifiers i JOIN identity_providers p "
            "ON p.pool_id = i.pool_id AND p.name = i.provider_name WHERE i.pool_id = ? AND i.identifier = ?",
            (pool_id, identifier),
            _idp,
        )

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

    async def list_identity_providers(
        self, pool_id: str, after: str | None, limit: int
    ) -> Page[IdentityProviderRecord]:
        rows = await _page_rows(self, _LIST_IDPS, (pool_id,), after, limit)
        return _page(rows, limit, _idp, lambda p: p.name)

    async def put_provider_link(self, link: ProviderLinkRecord) -> None:
        await self._insert(
            f"INSERT INTO provider_links ({LINK_COLUMNS}) VALUES ({_placeholders(LINK_COLUMNS)})",
            (
                link.pool_id,
                link.provider_name,
                link.attribute_name,
                link.attribute_value,
                link.username_key,
                link.created_at,
            ),
            _LINK_UNIQUE,
            "user",
        )

    async def get_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None:
        return await self._fetch_one(
            f"SELECT {LINK_COLUMNS} FROM provider_links WHERE pool_id = ? AND provider_name = ? "
            "AND attribute_name = ? AND attribute_value = ?",
            (pool_id, provider_name, attribute_name, attribute_value),
            _provider_link,
        )

    async def list_provider_links(self, pool_id: str, username_key: str) -> list[ProviderLinkRecord]:
        rows = await self._fetch(
            f"SELECT {LINK_COLUMNS} FROM provider_links WHERE pool_id = ? AND username_key = ? "
            "ORDER BY provider_name, attribute_name, attribute_value",
            (pool_id, username_key),
        )
        return [_provider_link(row) for row in rows]

    async def delete_provider_link(
        self, pool_id: str, provider_name: str, attribute_name: str, attribute_value: str
    ) -> ProviderLinkRecord | None:
        return await self._fetch_one(
            "DELETE FROM provider_links WHERE pool_id = ? AND provider_name = ? AND attribute_name = ? "
            f"AND attribute_value = ? RETURNING {LINK_COLUMNS}",
            (pool_id, provider_name, attribute_name, attribute_value),
            _provider_link,
        )

    async def put_federation_request(self, request: FederationRequestRecord) -> None:
        await self._insert(
            "INSERT INTO federation_requests (state_hash, pool_id, provider_name, data, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (request.state_hash, request.pool_id, request.provider_name, _dumps(request.data), request.expires_at),
            {"federation_requests.state_hash": "id"},
            "pool",
        )

    async def take_federation_request(self, state_hash: str) -> FederationRequestRecord | None:
        return await self._fetch_one(
            "DELETE FROM federation_requests WHERE state_hash = ? "
            "RETURNING state_hash, pool_id, provider_name, data, expires_at",
            (state_hash,),
            lambda r: FederationRequestRecord(r[0], r[1], r[2], _loads(r[3]), r[4]),
        )

    async def mark_assertion_seen(self, key: str, expires_at: float) -> bool:
        rows = await self._fetch(
            "INSERT INTO seen_assertions (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING 1",
            (key, expires_at),
        )
        return bool(rows)

    # --- managed login branding ---------------------------------------------------------------------------

    async def create_managed_login_branding(self, record: ManagedLoginBrandingRecord) -> None:
        r = record
        params = (
            r.branding_id,
            r.pool_id,
            r.client_id,
            int(r.use_cognito_provided_values),
            None if r.settings is None else _dumps(r.settings),
            _dumps(r.assets),
            r.created_at,
            r.updated_at,
            r.version,
        )
        await self._insert(_INSERT_BRANDING, params, _BRANDING_UNIQUE, "client")

    async def get_managed_login_branding(self, pool_id: str, branding_id: str) -> ManagedLoginBrandingRecord | None:
        return await self._fetch_one(
            f"SELECT {BRANDING_COLUMNS} FROM managed_login_brandings WHERE pool_id = ? AND id = ?",
            (pool_id, branding_id),
            _branding,
        )

    async def get_managed_login_branding_by_client(
        self, pool_id: str, client_id: str
    ) -> ManagedLoginBrandingRecord | None:
        return await self._fetch_one(
            f"SELECT {BRANDING_COLUMNS} FROM managed_login_brandings WHERE pool_id = ? AND client_id = ?",
            (pool_id, client_id),
            _branding,
        )

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

    async def delete_managed_login_branding(self, pool_id: str, branding_id: str) -> bool:
        return bool(
            await self._fetch(
                "DELETE FROM managed_login_brandings WHERE pool_id = ? AND id = ? RETURNING 1", (pool_id, branding_id)
            )
        )

    # --- terms documents -----------------------------------------------------------------------------------

    async def create_terms(self, record: TermsRecord) -> None:
        await self._insert(_INSERT_TERMS, _terms_params(record), _TERMS_UNIQUE, "client")

    async def get_terms(self, pool_id: str, terms_id: str) -> TermsRecord | None:
        return await self._fetch_one(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND id = ?", (pool_id, terms_id), _terms
        )

    async def get_terms_by_client(self, pool_id: str, client_id: str, name: str) -> TermsRecord | None:
        return await self._fetch_one(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND client_id = ? AND name = ?",
            (pool_id, client_id, name),
            _terms,
        )

    async def list_terms(self, pool_id: str, after_id: str | None, limit: int) -> list[TermsRecord]:
        rows = await self._fetch(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND id > ? ORDER BY id LIMIT ?",
            (pool_id, after_id or "", limit),
        )
        return [_terms(r) for r in rows]

    async def list_client_terms(self, pool_id: str, client_id: str) -> list[TermsRecord]:
        rows = await self._fetch(
            f"SELECT {TERMS_COLUMNS} FROM terms WHERE pool_id = ? AND client_id = ? ORDER BY name",
            (pool_id, client_id),
        )
        return [_terms(r) for r in rows]

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

    async def delete_terms(self, pool_id: str, terms_id: str) -> bool:
        return bool(
            await self._fetch("DELETE FROM terms WHERE pool_id = ? AND id = ? RETURNING 1", (pool_id, terms_id))
        )
