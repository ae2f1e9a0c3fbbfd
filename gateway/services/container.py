"""The services a running Gatehouse holds, built once per process by the app factory."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.auth import AuthService
from gateway.services.branding import BrandingService
from gateway.services.change_stamp import ChangeStamps
from gateway.services.cimd import CimdService
from gateway.services.code_limits import CodeSendLimiter
from gateway.services.credentials import CredentialService
from gateway.services.custom_sender import CodeEncryption
from gateway.services.domains import DomainService
from gateway.services.federation import FederationService
from gateway.services.front_door import FrontDoorService
from gateway.services.groups import GroupService
from gateway.services.hooks import HookRegistry
from gateway.services.iam import IamService
from gateway.services.identities import IdentityService, IssuerKeyStore
from gateway.services.identity_credentials import IdentityCredentials
from gateway.services.identity_pools import IdentityPoolService, LoginNames
from gateway.services.identity_providers import IdentityProviderService
from gateway.services.messaging import Messenger
from gateway.services.oauth import OAuthService
from gateway.services.passwordless import PasswordlessService
from gateway.services.passwords import PasswordHasher
from gateway.services.pools import PoolService
from gateway.services.ratelimit import RateLimiter
from gateway.services.risk import RiskService
from gateway.services.saml_federation import SamlVerifier
from gateway.services.saml_logout import SamlLogoutService
from gateway.services.sessions import SessionService
from gateway.services.social_logins import SocialLogins, endpoints_from_json
from gateway.services.terms import TermsService
from gateway.services.tokens import SigningKeys, TokenService
from gateway.services.triggers import AwsLambdaInvoker, TriggerService
from gateway.services.user_import import UserImportService
from gateway.services.users import UserService
from gateway.services.web_identity import WebIdentityVerifier
from gateway.services.webauthn import PasskeyService
from gateway.settings import Settings
from gateway.storage.base import Store

# The identity service's issuer is ``{public_url}/identity`` (user pool ids always hold an underscore).
IDENTITY_ISSUER_PATH = "identity"


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
    rate_limits: RateLimiter
    risk: RiskService
    identity_providers: IdentityProviderService
    federation: FederationService
    domains: DomainService
    oauth: OAuthService
    iam: IamService
    credentials: CredentialService
    web_identity: WebIdentityVerifier
    saml: SamlVerifier
    identity_pools: IdentityPoolService
    identities: IdentityService
    branding: BrandingService
    terms: TermsService
    cimd: CimdService
    hooks: HookRegistry
    triggers: TriggerService
    saml_logout: SamlLogoutService
    imports: UserImportService
    sessions: SessionService
    front_door: FrontDoorService

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
        sts_key: bytes | None = None,
        stamps: ChangeStamps | None = None,
        import_key: bytes | None = None,
    ) -> Services:
        pools = PoolService(store, region=settings.region, account_id=settings.account_id)
        users = UserService(
            store, pools, hasher, messenger, box, code_key, metrics, default_email_sender=settings.default_email_sender
        )
        tokens = TokenService(
            store,
            SigningKeys(
                store, box, cache_seconds=settings.key_cache_seconds, jwks_max_age=settings.jwks_max_age_seconds
            ),
            settings.issuer_base,
        )
        # Asked (through the pools' cache) whether a derived token's app client still exists.
        tokens.clients = pools
        risk = RiskService(store, pools, messenger, metrics, default_email_sender=settings.default_email_sender)
        users.threats = risk
        risk.public_url = settings.issuer_base
        users.code_sends = CodeSendLimiter(store, settings.code_send_limits, metrics)
        auth = AuthService(
            store, pools, users, tokens, hasher, box, metrics, fake_srp_secret=fake_srp_secret, risk=risk
        )
        auth.passwordless = PasswordlessService(
            store, users, hasher, PasskeyService(store, settings.issuer_base), code_key
        )
        iam = IamService(store, account_id=settings.account_id)
        # Without a key (a throwaway test container) credentials live only as long as this process.
        credentials = CredentialService(iam, sts_key or SecretBox.generate_key(), account_id=settings.account_id)
        web_identity = WebIdentityVerifier(iam, tokens, settings.issuer_base)
        identity_pools = IdentityPoolService(
            store,
            pools,
            LoginNames(settings.issuer_base.split("://", 1)[-1]),
            region=settings.region,
            account_id=settings.account_id,
        )
        identity_keys = SigningKeys(
            IssuerKeyStore(store),
            box,
            cache_seconds=settings.key_cache_seconds,
            jwks_max_age=settings.jwks_max_age_seconds,
        )
        identities = IdentityService(
            store,
            identity_pools,
            tokens,
            identity_keys,
            f"{settings.issuer_base}/{IDENTITY_ISSUER_PATH}",
            social=SocialLogins(endpoints_from_json(settings.social_endpoints)),
        )
        saml = SamlVerifier()
        IdentityCredentials(iam, credentials, identities).install(web_identity, saml)
        identity_providers = IdentityProviderService(store, pools, box)
        federation = FederationService(store, pools, identity_providers, box, public_url=settings.issuer_base)
        if stamps is not None:
            # Shared with every process of the store: their cached settings go stale at once on a change.
            pools.stamps = identity_pools.stamps = risk.stamps = stamps
            iam.use_stamps(stamps)
            identities.use_stamps(stamps)
            tokens.keys.stamps = identity_keys.stamps = stamps
            end_snapshot = getattr(store, "end_read_snapshot", None)
            if callable(end_snapshot):  # a store whose reads of a turn share one snapshot (SqliteStore)
                stamps.on_news = end_snapshot
        cimd = CimdService(store, pools, metrics=metrics, private_addresses=settings.cimd_private_addresses)
        oauth = OAuthService(
            store,
            pools,
            auth,
            tokens,
            cimd=cimd,
            code_seconds=settings.oauth_code_seconds,
            code_key=hmac.new(code_key, b"gatehouse authorization codes", hashlib.sha256).digest(),
        )
        sessions = SessionService(
            store, pools, hmac.new(code_key, b"gatehouse user session ids", hashlib.sha256).digest()
        )
        auth.sessions = sessions
        triggers = TriggerService(
            AwsLambdaInvoker(settings.lambda_invoke), metrics=metrics, code_encryption=CodeEncryption(settings.kms)
        )
        hooks = HookRegistry(triggers=triggers)
        federation.hooks = hooks
        users.hooks = hooks
        users.triggers = triggers
        auth.triggers = triggers
        domains = DomainService(store, pools, issuer_base=settings.issuer_base)
        users.page_base = domains.page_base
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
            rate_limits=RateLimiter(settings.rate_limits, metrics),
            risk=risk,
            identity_providers=identity_providers,
            federation=federation,
            domains=domains,
            oauth=oauth,
            iam=iam,
            credentials=credentials,
            web_identity=web_identity,
            saml=saml,
            identity_pools=identity_pools,
            identities=identities,
            branding=BrandingService(store, pools),
            terms=TermsService(store, pools),
            cimd=cimd,
            hooks=hooks,
            triggers=triggers,
            saml_logout=SamlLogoutService(federation, oauth, store),
            imports=UserImportService(
                store,
                pools,
                users,
                # Without a key (a throwaway test container) upload URLs are good for this process only.
                key=import_key or SecretBox.generate_key(),
                public_url=settings.issuer_base,
                url_seconds=settings.user_import_url_seconds,
                max_bytes=settings.user_import_max_bytes,
                metrics=metrics,
                idle_seconds=settings.user_import_idle_seconds,
            ),
            sessions=sessions,
            front_door=FrontDoorService(
                settings.front_door,
                key=code_key,
                store=store,
                oauth=oauth,
                tokens=tokens,
            ),
        )
