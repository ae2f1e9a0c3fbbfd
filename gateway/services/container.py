"""The services a running Gatehouse holds, built once per process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.auth import AuthService
from gateway.services.domains import DomainService
from gateway.services.federation import FederationService
from gateway.services.groups import GroupService
from gateway.services.identity_providers import IdentityProviderService
from gateway.services.messaging import Messenger
from gateway.services.oauth import OAuthService
from gateway.services.passwords import PasswordHasher
from gateway.services.pools import PoolService
from gateway.services.tokens import SigningKeys, TokenService
from gateway.services.users import UserService
from gateway.settings import Settings
from gateway.storage.base import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    metrics: Metrics
    box: SecretBox
    hasher: PasswordHasher
    messenger: Messenger
    pools: PoolService
    users: UserService
    groups: GroupService
    tokens: TokenService
    auth: AuthService
    admin_credentials: dict[str, str]
    fake_srp_secret: bytes
    identity_providers: IdentityProviderService
    federation: FederationService
    domains: DomainService
    oauth: OAuthService

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        box: SecretBox,
        hasher: PasswordHasher,
        messenger: Messenger,
        *,
        code_key: bytes,
        admin_credentials: dict[str, str],
        fake_srp_secret: bytes,
    ) -> Services:
        pools = PoolService(store, region=settings.region, account_id=settings.account_id)
        users = UserService(
            store, pools, hasher, messenger, box, code_key, metrics, default_email_sender=settings.default_email_sender
        )
        tokens = TokenService(
            store, SigningKeys(store, box, cache_seconds=settings.key_cache_seconds), settings.issuer_base
        )
        auth = AuthService(store, pools, users, tokens, hasher, box, metrics, fake_srp_secret=fake_srp_secret)
        identity_providers = IdentityProviderService(store, pools, box)
        federation = FederationService(store, pools, identity_providers, box, public_url=settings.issuer_base)
        return cls(
            settings=settings,
            store=store,
            metrics=metrics,
            box=box,
            hasher=hasher,
            messenger=messenger,
            pools=pools,
            users=users,
            groups=GroupService(store),
            tokens=tokens,
            auth=auth,
            admin_credentials=admin_credentials,
            fake_srp_secret=fake_srp_secret,
            identity_providers=identity_providers,
            federation=federation,
            domains=DomainService(store, pools),
            oauth=OAuthService(store, pools, auth, tokens, code_seconds=settings.oauth_code_seconds),
        )
