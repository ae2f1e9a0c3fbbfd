"""The upload end of a user import job's ``PreSignedUrl``: ``PUT`` the CSV file, as to S3.

Cognito's PreSignedUrl is an S3 pre-signed URL; the developer guide uploads to it with
``curl -v -T "file.csv" -H "x-amz-server-side-encryption:aws:kms" "<PreSignedUrl>"``. Gatehouse's points at
Gatehouse itself (``/gatehouse/user-import/{pool_id}/{job_id}``) and answers as S3 would: 200 with an ``ETag``
for a file kept; 403 with an S3 XML error (``SignatureDoesNotMatch``, ``AccessDenied``) for a URL it did not
sign or that has expired; 400 ``EntityTooLarge`` past the size limit, refused before the body is read when its
Content-Length says so (and before ``100 Continue`` when the client waits for one). The server-side encryption
header S3 is given is accepted and has nothing to do here. The signature and the file are checked and kept by
``gateway/services/user_import.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from xml.sax.saxutils import escape

import structlog
from aiohttp import hdrs, web

from gateway.logging import with_request_id
from gateway.oauth.wellknown import SERVICES
from gateway.services.user_import import EXPIRES_PARAMETER, SIGNATURE_PARAMETER, UPLOAD_PATH, UploadRefused

log = structlog.get_logger("gateway.user_import")

# Read from the socket this much at a time (the service keeps the file in larger parts).
READ_BYTES = 64 * 1024


def add_routes(app: web.Application) -> None:
    app.router.add_put(UPLOAD_PATH, with_request_id(put_file), expect_handler=expect_file)


def _s3_error(refused: UploadRefused) -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(refused.code)}</Code><Message>{escape(refused.message)}</Message></Error>"
    )
    # The connection is closed: the refused body may still be on its way, and must not be read as a request.
    return web.Response(
        status=refused.status, text=body, content_type="application/xml", headers={"Connection": "close"}
    )


def _check(request: web.Request) -> None:
    """The URL's signature and expiry, then the announced size: UploadRefused for any that does not hold."""
    imports = request.app[SERVICES].imports
    pool_id, job_id = request.match_info["pool_id"], request.match_info["job_id"]
    imports.check_upload_url(
        pool_id, job_id, request.query.get(EXPIRES_PARAMETER), request.query.get(SIGNATURE_PARAMETER)
    )
    if request.content_length is not None and request.content_length > imports.max_bytes:
        raise UploadRefused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")


async def expect_file(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: the checks first, so a refused upload is never sent."""
    expect = request.headers.get(hdrs.EXPECT, "")
    if expect.lower() != "100-continue":
        return web.Response(status=417, text="Expectation Failed")
    try:
        _check(request)
    except UploadRefused as refused:
        return _s3_error(refused)
    if request.version >= (1, 1):
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


async def _body(request: web.Request, idle_seconds: float) -> AsyncIterator[bytes]:
    """The request body as it arrives; TimeoutError when nothing has come for ``idle_seconds``."""
    while True:
        async with asyncio.timeout(idle_seconds):
            piece = await request.content.read(READ_BYTES)
        if not piece:
            return
        yield piece


async def put_file(request: web.Request) -> web.Response:
    """``PUT {PreSignedUrl}``: keep the body as the job's CSV file."""
    imports = request.app[SERVICES].imports
    try:
        _check(request)
        _size, md5 = await imports.receive_upload(
            request.match_info["pool_id"], request.match_info["job_id"], _body(request, imports.idle_seconds)
        )
    except UploadRefused as refused:
        return _s3_error(refused)
    except TimeoutError:
        # A stalled client holds one of the uploads the process takes at once: cut off, as S3 does.
        log.info("user_import.upload_idle", pool=request.match_info["pool_id"], job=request.match_info["job_id"])
        return _s3_error(
            UploadRefused(
                400,
                "RequestTimeout",
                "Your socket connection to the server was not read from or written to within the timeout period. "
                "Idle connections will be closed.",
            )
        )
    except (ConnectionError, web.RequestPayloadError):
        # The client went away (or sent a body its Transfer-Encoding does not frame): nothing was kept, and the
        # answer, S3's, most likely reaches nobody.
        log.info("user_import.upload_incomplete", pool=request.match_info["pool_id"], job=request.match_info["job_id"])
        return _s3_error(
            UploadRefused(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the Content-Length HTTP header.",
            )
        )
    return web.Response(status=200, headers={"ETag": f'"{md5}"'})
