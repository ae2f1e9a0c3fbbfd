"""The application factory: ``create_app(settings)`` builds one Gatehouse process.

State lives on the app under typed keys; the store, the message senders and the executor for CPU-heavy work
open and close in ``cleanup_ctx``. One port serves every wire; ``POST /`` is routed by protocol (the
``X-Amz-Target`` prefix of the AWS JSON services).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog
from aiohttp import web, web_response

from gateway.api import awsjson, awsquery, user_import_upload
from gateway.api.cognito_identity import cognito_identity_service
from gateway.api.cognito_idp import cognito_idp_service
from gateway.api.iam import iam_service
from gateway.api.sts import sts_service
from gateway.api.verify import verify_handler
from gateway.errors import GatehouseError, UnknownOperationException
from gateway.front_door import endpoints as front_door_endpoints
from gateway.front_door import proxy as front_door_proxy
from gateway.ids import RequestIds
from gateway.logging import with_request_id
from gateway.loop_watch import loop_watch_ctx
from gateway.metrics import Metrics
from gateway.oauth import endpoints as oauth_endpoints
from gateway.oauth import federation as federation_endpoints
from gateway.oauth import identity_discovery
from gateway.oauth.cors import allow_any_origin, preflight
from gateway.oauth.methods import add_method_fallbacks
from gateway.oauth.wellknown import SERVICES, jwks, openid_configuration
from gateway.routing import index_pool_routes
from gateway.secretbox import SecretBox
from gateway.services.container import Services
from gateway.services.messaging import Messenger, OutboxSender, SmtpEmailSender, WebhookSmsSender
from gateway.services.passwords import PasswordHasher
from gateway.services.user_import import UserImportService
from gateway.settings import Settings
from gateway.storage.base import Store
from gateway.storage.opening import change_stamps, open_store, share_changes
from gateway.ui import feedback as feedback_page
from gateway.ui import pages as hosted_pages

log = structlog.get_logger("gateway.app")

SETTINGS = web.AppKey("settings", Settings)
JSON_SERVICES = web.AppKey("json_services", dict)
# The AWS query-protocol services (IAM, STS) by signing name.
QUERY_SERVICES: web.AppKey[Mapping[str, awsquery.QueryService]] = web.AppKey("query_services")


def ensure_data_dir(settings: Settings) -> tuple[bytes, dict[str, str]]:
    """Create the data dir's secret key and admin credentials on first start; return them.

    Called by the parent process before any worker starts, so workers never race to create them."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file = data_dir / "secret.key"
    env_key = os.environ.get("GATEHOUSE_SECRET_KEY")
    if env_key:
        key = bytes.fromhex(env_key)
    else:
        if not key_file.exists():
            _write_private(key_file, SecretBox.generate_key().hex())
        key = bytes.fromhex(key_file.read_text().strip())
    if settings.admin_access_key_id and settings.admin_secret_access_key:
        return key, {settings.admin_access_key_id: settings.admin_secret_access_key.reveal()}
    cred_file = data_dir / "admin-credentials.json"
    if not cred_file.exists():
        generated = {
            "access_key_id": "GH" + secrets.token_hex(9).upper(),
            "secret_access_key": secrets.token_urlsafe(30),
        }
        _write_private(cred_file, json.dumps(generated, indent=2))
        log.warning("admin_credentials.generated", path=str(cred_file))
    creds = json.loads(cred_file.read_text())
    return key, {creds["access_key_id"]: creds["secret_access_key"]}


def derive_key(key: bytes, purpose: bytes) -> bytes:
    """A sub-key for one purpose, so no key serves two (HMAC-SHA256 as a PRF, RFC 2104)."""
    return hmac.new(key, purpose, hashlib.sha256).digest()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


# The Server header of every answer: aiohttp's default names the Python and aiohttp versions, which tells a scanner
# which published flaws to try (RFC 9110 §10.2.4: "An origin server SHOULD NOT generate a Server header field
# containing needlessly fine-grained detail"). The product name alone, with no version.
SERVER_HEADER = "Gatehouse"


async def _server_header(_request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare, only if aiohttp no longer has the default named below: every answer the application
    makes (its routes, 404 and 405, error pages, the 500 of an unhandled exception)."""
    response.headers["Server"] = SERVER_HEADER


def _use_server_header(app: web.Application) -> None:
    """Answer with ``Server: Gatehouse``. aiohttp fills in its default (``web_response.SERVER_SOFTWARE``) on every
    answer that has no Server header; naming ours there costs nothing per request, where a response-prepare
    signal costs a coroutine call on every answer (measurable on the light paths: ~3% of the hosted page's
    throughput). Should an aiohttp release drop that default, the signal does the same job. Neither reaches the
    400 aiohttp's HTTP parser answers to a request it cannot parse (a malformed request line, an oversized
    header): that one is made before any application sees the request."""
    if isinstance(getattr(web_response, "SERVER_SOFTWARE", None), str):
        setattr(web_response, "SERVER_SOFTWARE", SERVER_HEADER)  # noqa: B010  # not in its __all__
    else:
        app.on_response_prepare.append(_server_header)


def create_app(settings: Settings, *, metrics: Metrics | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    _use_server_header(app)
    app.cleanup_ctx.append(_services_ctx(metrics or Metrics()))
    app.cleanup_ctx.append(loop_watch_ctx)
    app.router.add_post("/", dispatch)  # the AWS wires bind their own request ids (x-amzn-RequestId)
    # IAM and STS also by GET, their parameters in the URL (a presigned URL); HEAD is no AWS call.
    app.router.add_get("/", dispatch_get, allow_head=False)
    # The AWS SDKs for JavaScript call the wires from web pages of any origin (awsjson.CORS_HEADERS).
    app.router.add_options("/", with_request_id(preflight("POST")))
    # Every other endpoint: one request id per request, on its events and in x-amz-cognito-request-id.
    app.router.add_post("/gatehouse/verify", with_request_id(verify_handler))
    # A user import job's PreSignedUrl (CreateUserImportJob): the CSV file is PUT here, as to S3.
    user_import_upload.add_routes(app)
    app.router.add_get("/health", with_request_id(health))
    app.router.add_get("/metrics", with_request_id(metrics_handler))
    # Read by OIDC libraries in browser apps too (gateway/oauth/cors.py).
    app.router.add_get("/{pool_id}/.well-known/jwks.json", with_request_id(allow_any_origin(jwks)))
    app.router.add_get(
        "/{pool_id}/.well-known/openid-configuration", with_request_id(allow_any_origin(openid_configuration))
    )
    app.router.add_options("/{pool_id}/.well-known/jwks.json", with_request_id(preflight("GET")))
    app.router.add_options("/{pool_id}/.well-known/openid-configuration", with_request_id(preflight("GET")))
    oauth_endpoints.add_routes(app)
    federation_endpoints.add_routes(app)
    hosted_pages.add_routes(app)
    feedback_page.add_routes(app)
    identity_discovery.add_routes(app)
    front_door_endpoints.add_routes(app)
    # An app behind the front door with an upstream is served on its own host, before any route of Gatehouse's.
    front_door_proxy.add_proxies(app, settings.front_door)
    add_method_fallbacks(app.router)  # after every route, before the pool routes are indexed
    index_pool_routes(app.router)
    return app


def _services_ctx(metrics: Metrics):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        key, admin_credentials = ensure_data_dir(settings)
        box = SecretBox(key)
        store = await open_store(settings)
        executor = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="gatehouse-cpu")
        try:
            services = await _start_services(app, settings, metrics, key, admin_credentials, box, store, executor)
        except BaseException:
            # Start-up fails (the change stamps cannot be mapped, the config file cannot be applied, ...): close
            # what is open, or the store's thread keeps the process from ever exiting.
            await store.close()
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        log.info("gateway.started", data_dir=str(settings.data_dir), issuer_base=settings.issuer_base)
        _tune_garbage_collector()
        purger = asyncio.create_task(_purge_expired(store, services.imports))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await services.imports.close()
            await _close_services(services)
            await store.close()
            executor.shutdown(wait=False, cancel_futures=True)

    return ctx


async def _start_services(
    app: web.Application,
    settings: Settings,
    metrics: Metrics,
    key: bytes,
    admin_credentials: dict[str, str],
    box: SecretBox,
    store: Store,
    executor: ThreadPoolExecutor,
) -> Services:
    """The services over an open store, in ``app``, with the config file applied. What it opened is closed
    again when it fails (the store and the executor are the caller's)."""
    hasher = PasswordHasher(settings.argon2, executor)
    outbox = OutboxSender(Path(settings.data_dir) / "outbox.jsonl")
    email = (
        SmtpEmailSender(
            settings.smtp.host,
            settings.smtp.port,
            username=settings.smtp.username,
            password=settings.smtp.password.reveal() if settings.smtp.password else None,
            use_tls=settings.smtp.use_tls,
            start_tls=settings.smtp.start_tls,
            timeout=settings.smtp.timeout,
        )
        if settings.smtp
        else outbox
    )
    sms = (
        WebhookSmsSender(
            settings.sms_webhook.url, headers=settings.sms_webhook.headers, timeout=settings.sms_webhook.timeout
        )
        if settings.sms_webhook
        else outbox
    )
    messenger = Messenger(email, sms)
    from gateway.services.messaging import announce_outbox

    announce_outbox(
        outbox.path,
        [m for m, s in (("email", email), ("sms", sms)) if s is outbox],
        smtp_configured=bool(settings.smtp),
    )
    try:
        stamps = change_stamps(settings)
        await share_changes(store, stamps)
        services = Services.build(
            settings,
            store,
            metrics,
            box,
            hasher,
            messenger,
            code_key=derive_key(key, b"gatehouse one-time codes"),
            admin_credentials=admin_credentials,
            fake_srp_secret=derive_key(key, b"gatehouse srp decoys"),
            sts_key=derive_key(key, b"gatehouse sts credentials"),
            stamps=stamps,
            import_key=derive_key(key, b"gatehouse user import uploads"),
        )
    except BaseException:
        await messenger.close()
        raise
    app[SERVICES] = services
    app[JSON_SERVICES] = {"AWSCognitoIdentityProviderService": cognito_idp_service()}
    app[JSON_SERVICES]["AWSCognitoIdentityService"] = cognito_identity_service()
    app[QUERY_SERVICES] = {"iam": iam_service(), "sts": sts_service()}
    if settings.config_path is not None:
        from gateway.config_file import apply_config, load_config

        try:
            await apply_config(services, load_config(settings.config_path))
        except BaseException:
            await _close_services(services)
            raise
    return services


async def _close_services(services: Services) -> None:
    """Close what the services hold open beside the store: the message senders, the HTTP sessions of the
    upstream identity providers and metadata documents, and the trigger functions' threads."""
    await services.messenger.close()
    await services.web_identity.close()
    await services.federation.close()
    await services.cimd.close()
    if services.triggers.invoker is not None:
        await services.triggers.invoker.close()
    if services.triggers.local is not None:
        await services.triggers.local.close()
    if services.triggers.code_encryption is not None:
        await services.triggers.code_encryption.close()


def _tune_garbage_collector() -> None:
    """Keep the cyclic garbage collector's work proportional to garbage, not to the heap or the requests in
    flight (the Python docs' ``gc.freeze`` advice for servers, with a larger first threshold).

    * ``gc.freeze()`` after start-up: most of a worker's heap is made once and kept for its life (the AWS service
      models above all, a few hundred thousand objects), and the oldest generation's collection walked all of it
      every few thousand requests (~60 ms each time).
    * The youngest generation's threshold from 700 to 10,000 allocations: with 64 requests in flight, their live
      coroutines, headers and bodies (1,000-5,000 objects) were walked by every young collection, one every ~85
      code flows, and moved on to be walked again; under the code flow's load the collector took ~13 us per flow
      and now none. Garbage that only the collector can free (reference cycles) waits a little longer: at most
      ~10,000 objects.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


PURGE_INTERVAL_SECONDS = 600.0


async def _purge_expired(store: Store, imports: UserImportService) -> None:
    """Drop expired codes, sessions and tokens now and then, so the store does not grow without bound; expire
    the user import jobs never started (their files go in the same round)."""
    while True:
        try:
            now = time.time()
            await imports.expire_unstarted(now)
            removed = await store.purge_expired(now)
            if removed:
                log.info("store.purged", rows=removed)
        except Exception:  # a failed purge is retried next round; serving must go on
            log.exception("store.purge_failed")
        await asyncio.sleep(PURGE_INTERVAL_SECONDS)


async def dispatch(request: web.Request) -> web.Response:
    """``POST /``: route to the AWS JSON service named by ``X-Amz-Target``, or to the query protocol."""
    services = request.app[SERVICES]
    target = request.headers.get("X-Amz-Target", "")
    prefix = target.partition(".")[0]
    json_services = request.app[JSON_SERVICES]
    limit = request.app[SETTINGS].max_body_bytes
    if not target and awsquery.is_query_request(request):
        # IAM and STS: a form body with Action=... (the AWS query protocol), answered in XML from the start.
        return await awsquery.handle(request.app[QUERY_SERVICES], services, request, limit)
    service = json_services.get(prefix)
    try:
        body = await awsjson.read_body(request, limit)
    except GatehouseError as unreadable:  # too large, or not decodable with its Content-Encoding
        return _refused_before_dispatch(services, service, unreadable)
    if service is None:
        unknown: GatehouseError = UnknownOperationException(f"Operation {target or '(none)'} is not supported.")
        return _refused_before_dispatch(services, None, unknown)
    return await awsjson.handle(service, services, request, target, body)


async def dispatch_get(request: web.Request) -> web.Response:
    """``GET /``: the query protocol with the parameters in the URL (IAM and STS; the JSON wires are POST only)."""
    app = request.app
    return await awsquery.handle(app[QUERY_SERVICES], app[SERVICES], request, app[SETTINGS].max_body_bytes)


# Request ids for calls that name no service Gatehouse has (each JsonService has its own).
_UNROUTED_REQUEST_IDS = RequestIds()


def _refused_before_dispatch(
    services: Services, service: awsjson.JsonService | None, error: GatehouseError
) -> web.Response:
    """A JSON-wire call refused before its service ran: still a request id (every AWS answer has one; botocore
    shows it as ResponseMetadata.RequestId) and still counted, as "unknown" operations of its wire."""
    request_id = (service.request_ids if service is not None else _UNROUTED_REQUEST_IDS).next()
    services.metrics.call_finished(service.wire if service is not None else "unknown", "unknown", error.type_name, 0.0)
    return awsjson.error_response(error, request_id)


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 when this process can serve; 503 while it starts, or when its store cannot keep
    what it is given (an orchestrator then restarts it, rather than let it lose writes)."""
    if SERVICES not in request.app:
        return web.json_response({"status": "starting"}, status=503)
    services = request.app[SERVICES]
    problem = await services.store.health_problem(services.settings.min_free_bytes)
    if problem is not None:
        log.error("health.store_unavailable", reason=problem)
        return web.json_response({"status": "unavailable", "reason": problem}, status=503)
    return web.json_response({"status": "ok"})


async def metrics_handler(request: web.Request) -> web.Response:
    body, content_type = request.app[SERVICES].metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response
