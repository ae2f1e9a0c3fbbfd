"""User import jobs: Cognito's bulk import of users from a CSV file.

Follows the developer guide's "Importing users into user pools from a CSV file", "Creating the user import CSV
file", "Creating and running the Amazon Cognito user pool import job" and "Viewing the user pool import results"
(the per-row outcomes), and the API reference of GetCSVHeader, CreateUserImportJob, StartUserImportJob,
StopUserImportJob, DescribeUserImportJob and ListUserImportJobs.

* A job's ``PreSignedUrl`` is an upload URL on Gatehouse itself (``gateway/api/user_import_upload.py``), where
  Cognito's is an S3 one: ``PUT`` the file to it. It is signed (HMAC-SHA256 under a key of its own), names one
  job and expires, as an S3 pre-signed URL does. The file is kept in the store in parts, so every process of a
  deployment can run the job, and dropped once the job ends.
* StartUserImportJob answers at once (``Pending``); the import runs as a task on the process that got the call.
  The CSV file is decoded and parsed in a worker thread, one part at a time, so the event loop is never held
  by a large file. Progress is written to the store as it goes, which is how StopUserImportJob (from any
  process) reaches the task, and how a job whose process died is found: its progress stops.
* Each row is a user: imported in RESET_REQUIRED (no password; the user's way in is ForgotPassword), skipped
  when the user exists, or failed with a reason. A failed row fails alone; a file that cannot be read, or a
  header that is not the pool's, fails the job. Per-row outcomes go to Gatehouse's log, where Cognito writes
  them to CloudWatch Logs: one event per skipped or failed row, naming the line, never its values.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import hashlib
import hmac
import re
import secrets
import string
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, urlencode

import structlog

from gateway.api.model import ServiceModel
from gateway.errors import (
    GatehouseError,
    InvalidParameterException,
    PreconditionNotMetException,
    ResourceNotFoundException,
    UsernameExistsException,
)
from gateway.metrics import Metrics
from gateway.services.pools import PoolService, PoolView
from gateway.services.users import UserService
from gateway.storage.base import (
    UNSTARTED_IMPORT_JOB_SECONDS,
    AlreadyExists,
    NotFound,
    Page,
    Store,
    UserImportJobRecord,
)

log = structlog.get_logger("gateway.user_import")

CREATED = "Created"
PENDING = "Pending"
IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
EXPIRED = "Expired"
STOPPED = "Stopped"
FAILED = "Failed"
SUCCEEDED = "Succeeded"
RUNNING = (PENDING, IN_PROGRESS, STOPPING)

# The upload route; the URL carries the expiry and the signature as query parameters.
UPLOAD_PATH = "/gatehouse/user-import/{pool_id}/{job_id}"
EXPIRES_PARAMETER = "X-Gatehouse-Expires"
SIGNATURE_PARAMETER = "X-Gatehouse-Signature"
# The size of the parts an upload is kept in, and read back in (memory per upload and per running job).
PART_BYTES = 1024 * 1024
# "Expired - You created a job, but did not start the job within 24-48 hours" (UserImportJobType.Status); the
# store's purge expires such a job too, and deletes its file, when no call looks at it.
UNSTARTED_JOB_SECONDS = UNSTARTED_IMPORT_JOB_SECONDS
# Rows imported between two progress writes (each is also a check for StopUserImportJob).
PROGRESS_ROWS = 100
# Uploads a process reads at once, in all and to one job: each keeps up to max_bytes in the store until it ends,
# so a leaked upload URL (or a client retrying in a loop) must not fill the disk. More: S3's 503 SlowDown.
MAX_UPLOADS = 16
MAX_UPLOADS_PER_JOB = 2
# A running job whose progress has not been written for this long lost its process (a restart, a crash).
STALE_JOB_SECONDS = 300.0

SUCCEEDED_MESSAGE = "Import Job Completed Successfully."
STOPPED_MESSAGE = "The import job was stopped."
NO_FILE_MESSAGE = "No CSV file was uploaded to the job's PreSignedUrl before the job started."
INTERRUPTED_MESSAGE = "The import was interrupted: the Gatehouse process that ran it stopped."
INTERNAL_MESSAGE = "The import job failed on an internal error."
NO_AUTO_VERIFIED = (
    "The User Record does not set any of the auto verified attributes to true. (Example: email_verified to true)."
)
USER_EXISTS = "The user already exists."
BAD_USERNAME = (
    "cognito:username is not a valid username: 1 to 128 letters, marks, symbols, digits or punctuation marks, "
    "without spaces or control characters."
)
# A row the CSV reader refuses: a value longer than any attribute's (the csv module's limit is 128 KiB; an
# attribute value's is 2,048 characters), or a carriage return inside an unquoted value.
UNPARSABLE_ROW: Final = ("FAILED", "The row cannot be read as CSV: a value is too long or holds a carriage return.")
MFA_FLAG = "cognito:mfa_enabled"
USERNAME_COLUMN = "cognito:username"
# Never in the header: ``sub`` is Cognito's to set, ``identities`` only federation writes.
_NOT_IMPORTED = frozenset({"sub", "identities"})
_JOB_ID_ALPHABET = string.ascii_letters + string.digits
# The characters that move the csv module's reader from one state to another (any other one moves it alike).
_CSV_SPECIAL = re.compile(r'[",\\\r\n]')
# The csv module's reader states (Modules/_csv.c), and the two inputs that are no character of the line.
(
    _START_RECORD,
    _START_FIELD,
    _ESCAPE_CHAR,
    _IN_FIELD,
    _IN_QUOTED_FIELD,
    _ESCAPE_IN_QUOTED_FIELD,
    _QUOTE_IN_QUOTED_FIELD,
    _EAT_CRNL,
    _AFTER_ESCAPED_CRNL,
) = range(9)
_OTHER = "other"
_EOL = "eol"


class UploadRefused(Exception):
    """An upload to a PreSignedUrl that is refused, with the S3 error code and HTTP status an S3 pre-signed URL
    would answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _JobFailed(Exception):
    """The job cannot go on (its file cannot be read, its header is not the pool's): it ends Failed."""


@dataclass
class _Counts:
    imported: int = 0
    skipped: int = 0
    failed: int = 0

    def changes(self) -> dict[str, Any]:
        return {"imported_users": self.imported, "skipped_users": self.skipped, "failed_users": self.failed}


def csv_header(pool: PoolView) -> list[str]:
    """GetCSVHeader: the pool's attributes in schema order (the standard ones, then the custom ones), then
    ``cognito:mfa_enabled`` and ``cognito:username``, as Cognito's sample response lists them."""
    names = [str(a["Name"]) for a in pool.schema if a["Name"] not in _NOT_IMPORTED]
    return [*names, MFA_FLAG, USERNAME_COLUMN]


class UserImportService:
    """CreateUserImportJob ... ListUserImportJobs, the upload of a job's file, and the jobs' runs."""

    def __init__(
        self,
        store: Store,
        pools: PoolService,
        users: UserService,
        *,
        key: bytes,
        public_url: str,
        url_seconds: float,
        max_bytes: int,
        metrics: Metrics | None = None,
        idle_seconds: float = 60.0,
    ) -> None:
        self._store = store
        metrics = metrics or Metrics()
        self._rows = metrics.counter(
            "gatehouse_user_import_rows",
            "User import rows, by result (imported, skipped: the user exists, failed).",
            ["result"],
        )
        # Counted by the process whose conditional write ended the job, so once per job in all.
        self._jobs = metrics.counter(
            "gatehouse_user_import_jobs",
            "User import jobs ended, by final status (Succeeded, Failed, Stopped, Expired).",
            ["status"],
        )
        self._pools = pools
        self._users = users
        self._key = key
        self._public_url = public_url.rstrip("/")
        self._url_seconds = url_seconds
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        # The runs of this process (a reference keeps each task alive until it ends).
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        # The uploads this process is reading, per job.
        self._uploads: dict[tuple[str, str], int] = {}

    # --- jobs -----------------------------------------------------------------------------------------

    async def create_job(
        self, pool_id: str, name: str, role_arn: str, hashing_algorithm: str | None
    ) -> UserImportJobRecord:
        """CreateUserImportJob: a job in ``Created``, whose PreSignedUrl accepts its CSV file."""
        await self._pools.get_pool(pool_id)
        if hashing_algorithm is not None:
            # The CSV format of password hashes is not Gatehouse's to guess: refused, rather than imported
            # without them (the users would be in RESET_REQUIRED, unlike what the caller asked).
            raise InvalidParameterException(
                "PasswordHashingAlgorithm is not supported: import users without password hashes."
            )
        now = time.time()
        while True:
            job_id = "import-" + "".join(secrets.choice(_JOB_ID_ALPHABET) for _ in range(10))
            job = UserImportJobRecord(
                pool_id=pool_id,
                job_id=job_id,
                list_key=f"{now:017.6f}-{job_id}",
                name=name,
                role_arn=role_arn,
                status=CREATED,
                created_at=now,
                url_expires_at=float(int(now + self._url_seconds)),
            )
            try:
                await self._store.create_user_import_job(job)
            except AlreadyExists:
                continue  # a job id drawn twice (62^10 of them): draw another
            except NotFound as exc:
                raise ResourceNotFoundException(f"User pool {pool_id} does not exist.") from exc
            log.info("user_import.created", pool=pool_id, job=job_id)
            return job

    async def get_job(self, pool_id: str, job_id: str) -> UserImportJobRecord:
        """DescribeUserImportJob's job: ResourceNotFoundException for a job this pool does not have."""
        await self._pools.get_pool(pool_id)
        job = await self._store.get_user_import_job(pool_id, job_id)
        if job is None:
            raise ResourceNotFoundException(f"Import job {job_id} does not exist in user pool {pool_id}.")
        return await self._settle(job)

    async def list_jobs(self, pool_id: str, after: str | None, limit: int) -> Page[UserImportJobRecord]:
        await self._pools.get_pool(pool_id)
        page = await self._store.list_user_import_jobs(pool_id, after, limit)
        return Page([await self._settle(job) for job in page.items], page.next_token)

    async def _settle(self, job: UserImportJobRecord) -> UserImportJobRecord:
        """The job as it stands now: a job never started within a day is Expired (and its file dropped); a
        running job whose progress stopped (its process is gone) is Failed, or Stopped if it was stopping."""
        now = time.time()
        if job.status == CREATED and now > job.created_at + UNSTARTED_JOB_SECONDS:
            settled = await self._store.update_user_import_job(
                job.pool_id, job.job_id, statuses=[CREATED], changes={"status": EXPIRED}
            )
            if settled is None:  # started meanwhile, by another call: its file is being read
                return await self._reread(job)
            self._jobs.labels(status=EXPIRED).inc()
            await self._store.drop_user_import_upload(job.pool_id, job.job_id, None)
            return settled
        running_here = (job.pool_id, job.job_id) in self._tasks
        last_sign = job.heartbeat_at or job.started_at or job.created_at
        if job.status in RUNNING and not running_here and now > last_sign + STALE_JOB_SECONDS:
            stopping = job.status == STOPPING
            settled = await self._store.update_user_import_job(
                job.pool_id,
                job.job_id,
                statuses=[job.status],
                changes={
                    "status": STOPPED if stopping else FAILED,
                    "completed_at": now,
                    "completion_message": STOPPED_MESSAGE if stopping else INTERRUPTED_MESSAGE,
                },
            )
            if settled is None:  # its run moved on meanwhile: still alive
                return await self._reread(job)
            self._jobs.labels(status=settled.status).inc()
            await self._store.drop_user_import_upload(job.pool_id, job.job_id, None)
            log.warning("user_import.interrupted", pool=job.pool_id, job=job.job_id, status=settled.status)
            return settled
        return job

    async def _reread(self, job: UserImportJobRecord) -> UserImportJobRecord:
        fresh = await self._store.get_user_import_job(job.pool_id, job.job_id)
        if fresh is None:
            raise ResourceNotFoundException(f"Import job {job.job_id} does not exist in user pool {job.pool_id}.")
        return fresh

    async def start_job(self, pool_id: str, job_id: str) -> UserImportJobRecord:
        """StartUserImportJob: ``Pending`` now, the import in a task of this process."""
        pool = await self._pools.get_pool(pool_id, fresh=True)
        job = await self.get_job(pool_id, job_id)
        if job.status != CREATED:
            raise PreconditionNotMetException(f"Import job {job_id} cannot be started: its status is {job.status}.")
        if not set(pool.auto_verified) & {"email", "phone_number"}:
            # "If the user pool has no auto-verified attributes, the import job will not start."
            raise PreconditionNotMetException(
                "The user pool has no auto-verified attributes: an imported user could not reset their password."
            )
        now = time.time()
        try:
            started = await self._store.update_user_import_job(
                pool_id,
                job_id,
                statuses=[CREATED],
                changes={"status": PENDING, "started_at": now, "heartbeat_at": now},
            )
        except AlreadyExists as exc:
            raise PreconditionNotMetException("Another import job of this user pool is running.") from exc
        if started is None:  # started or expired meanwhile, by another call
            current = await self._reread(job)
            raise PreconditionNotMetException(f"Import job {job_id} cannot be started: its status is {current.status}.")
        task = asyncio.create_task(self._run(pool_id, job_id), name=f"user-import-{job_id}")
        self._tasks[(pool_id, job_id)] = task
        task.add_done_callback(lambda _: self._tasks.pop((pool_id, job_id), None))
        log.info("user_import.started", pool=pool_id, job=job_id)
        return started

    async def stop_job(self, pool_id: str, job_id: str) -> UserImportJobRecord:
        """StopUserImportJob: a Pending or InProgress job becomes Stopping; its run stops at its next progress
        write and the job ends Stopped."""
        job = await self.get_job(pool_id, job_id)
        stopping = await self._store.update_user_import_job(
            pool_id, job_id, statuses=[PENDING, IN_PROGRESS], changes={"status": STOPPING}
        )
        if stopping is None:
            current = await self._reread(job)
            raise PreconditionNotMetException(f"Import job {job_id} cannot be stopped: its status is {current.status}.")
        log.info("user_import.stopping", pool=pool_id, job=job_id)
        return stopping

    async def expire_unstarted(self, now: float) -> int:
        """Expire the jobs of every pool never started within a day (the periodic purge's part: a job nobody
        looks at again is not left Created, its file kept); each is counted once, by the process that expired
        it, as :meth:`_settle` counts the ones a call finds."""
        expired = await self._store.expire_unstarted_import_jobs(now)
        if expired:
            self._jobs.labels(status=EXPIRED).inc(expired)
        return expired

    async def close(self) -> None:
        """Cancel this process's runs (at shutdown). Their jobs are found interrupted later (:meth:`_settle`)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- UserImportJobType ------------------------------------------------------------------------------

    def job_type(self, job: UserImportJobRecord) -> dict[str, Any]:
        """Cognito's UserImportJobType."""
        result: dict[str, Any] = {
            "JobName": job.name,
            "JobId": job.job_id,
            "UserPoolId": job.pool_id,
            "PreSignedUrl": self.presigned_url(job),
            "CreationDate": job.created_at,
            "Status": job.status,
            "CloudWatchLogsRoleArn": job.role_arn,
            "ImportedUsers": job.imported_users,
            "SkippedUsers": job.skipped_users,
            "FailedUsers": job.failed_users,
        }
        if job.started_at is not None:
            result["StartDate"] = job.started_at
        if job.completed_at is not None:
            result["CompletionDate"] = job.completed_at
        if job.completion_message is not None:
            result["CompletionMessage"] = job.completion_message
        return result

    # --- the PreSignedUrl -------------------------------------------------------------------------------

    def _signature(self, pool_id: str, job_id: str, expires: int) -> str:
        message = f"user-import-upload\n{pool_id}\n{job_id}\n{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def presigned_url(self, job: UserImportJobRecord) -> str:
        expires = int(job.url_expires_at)
        path = UPLOAD_PATH.format(pool_id=quote(job.pool_id, safe=""), job_id=quote(job.job_id, safe=""))
        query = urlencode(
            {EXPIRES_PARAMETER: str(expires), SIGNATURE_PARAMETER: self._signature(job.pool_id, job.job_id, expires)}
        )
        return f"{self._public_url}{path}?{query}"

    def check_upload_url(self, pool_id: str, job_id: str, expires: str | None, signature: str | None) -> None:
        """Raises UploadRefused (403, as S3 answers) unless the URL is one this server signed for this job and
        has not expired."""
        if not expires or not signature:
            raise UploadRefused(
                403,
                "AccessDenied",
                f"Query-string authentication requires the {SIGNATURE_PARAMETER} and {EXPIRES_PARAMETER} parameters.",
            )
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            raise UploadRefused(403, "AccessDenied", f"{EXPIRES_PARAMETER} is not a valid expiry time.")
        expected = self._signature(pool_id, job_id, int(expires))
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="surrogatepass")):
            raise UploadRefused(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if int(expires) <= time.time():
            raise UploadRefused(403, "AccessDenied", "Request has expired")

    async def receive_upload(self, pool_id: str, job_id: str, body: AsyncIterator[bytes]) -> tuple[int, str]:
        """Keep the CSV file ``PUT`` to a job's PreSignedUrl (after :meth:`check_upload_url`), replacing the one
        uploaded before, if any; returns its size and MD5 (S3's ETag). Read as it arrives and kept in parts,
        never whole in memory; refused past ``max_bytes`` (S3's EntityTooLarge), when the job no longer takes
        a file (it started, or expired), or past MAX_UPLOADS / MAX_UPLOADS_PER_JOB uploads at once (SlowDown)."""
        slot = (pool_id, job_id)
        if sum(self._uploads.values()) >= MAX_UPLOADS or self._uploads.get(slot, 0) >= MAX_UPLOADS_PER_JOB:
            log.warning("user_import.upload_throttled", pool=pool_id, job=job_id)
            raise UploadRefused(503, "SlowDown", "Please reduce your request rate.")
        self._uploads[slot] = self._uploads.get(slot, 0) + 1
        try:
            return await self._receive(pool_id, job_id, body)
        finally:
            self._uploads[slot] -= 1
            if not self._uploads[slot]:
                del self._uploads[slot]

    async def _receive(self, pool_id: str, job_id: str, body: AsyncIterator[bytes]) -> tuple[int, str]:
        job = await self._store.get_user_import_job(pool_id, job_id)
        if job is None:
            raise UploadRefused(404, "NoSuchKey", "The import job does not exist.")
        if job.status != CREATED:
            raise UploadRefused(403, "AccessDenied", "The import job no longer accepts a file.")
        upload_id = secrets.token_hex(8)
        size = 0
        seq = 0
        digest = hashlib.md5(usedforsecurity=False)
        buffer = bytearray()
        try:
            async for piece in body:
                size += len(piece)
                if size > self.max_bytes:
                    raise UploadRefused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
                digest.update(piece)
                buffer += piece
                while len(buffer) >= PART_BYTES:
                    await self._store.add_user_import_chunk(pool_id, job_id, upload_id, seq, bytes(buffer[:PART_BYTES]))
                    del buffer[:PART_BYTES]
                    seq += 1
            if buffer:
                await self._store.add_user_import_chunk(pool_id, job_id, upload_id, seq, bytes(buffer))
            taken = await self._store.finish_user_import_upload(pool_id, job_id, upload_id, size, time.time())
        except NotFound as exc:
            raise UploadRefused(404, "NoSuchKey", "The import job does not exist.") from exc
        except BaseException:
            # Cut short (too large, the client gone, the server stopping): nothing of it stays.
            with contextlib.suppress(Exception):
                await self._store.drop_user_import_upload(pool_id, job_id, upload_id)
            raise
        if not taken:
            raise UploadRefused(403, "AccessDenied", "The import job no longer accepts a file.")
        log.info("user_import.uploaded", pool=pool_id, job=job_id, bytes=size)
        return size, digest.hexdigest()

    # --- the run ----------------------------------------------------------------------------------------

    async def _run(self, pool_id: str, job_id: str) -> None:
        """Import the job's file, row by row, writing progress as it goes; end the job Succeeded, Failed or
        Stopped."""
        counts = _Counts()
        try:
            job = await self._store.update_user_import_job(
                pool_id, job_id, statuses=[PENDING], changes={"status": IN_PROGRESS, "heartbeat_at": time.time()}
            )
            if job is None:
                await self._stop_if_stopping(pool_id, job_id, counts)
                return
            if job.upload_id is None:
                await self._finish(pool_id, job_id, FAILED, NO_FILE_MESSAGE, counts)
                return
            pool = await self._pools.get_pool(pool_id, fresh=True)
            message = await self._import_file(pool, job.job_id, job.upload_id, counts)
            if message is None:
                return  # stopped, or no longer ours to finish
            await self._finish(pool_id, job_id, SUCCEEDED, message, counts)
        except _JobFailed as failed:
            await self._finish(pool_id, job_id, FAILED, str(failed), counts)
        except asyncio.CancelledError:
            raise
        except ResourceNotFoundException:
            log.info("user_import.pool_deleted", pool=pool_id, job=job_id)  # the job went with its pool
        except Exception:
            # A job must end in a status a caller can see, whatever went wrong; the log keeps the trace.
            log.exception("user_import.run_failed", pool=pool_id, job=job_id)
            with contextlib.suppress(Exception):
                await self._finish(pool_id, job_id, FAILED, INTERNAL_MESSAGE, counts)

    async def _import_file(self, pool: PoolView, job_id: str, upload_id: str, counts: _Counts) -> str | None:
        """The rows of the job's file imported; SUCCEEDED_MESSAGE, or None when the run must end here."""
        loop = asyncio.get_running_loop()
        reader = CsvStream()
        header: _Header | None = None
        since_progress = 0
        seq = 0
        while True:
            data = await self._store.read_user_import_chunk(pool.id, job_id, upload_id, seq)
            final = data is None
            # Decoding and parsing a part (up to a megabyte) in a worker thread: the loop goes on serving.
            records = await loop.run_in_executor(None, reader.feed, data or b"", final)
            for line, fields in records:
                if header is None:
                    if fields is None:
                        raise _JobFailed(f"The CSV file cannot be parsed near line {line}.")
                    header = _Header.check(pool, fields)
                    continue
                result = await self._import_row(pool, header, fields) if fields is not None else UNPARSABLE_ROW
                if result is None:
                    counts.imported += 1
                    self._rows.labels(result="imported").inc()
                else:
                    outcome, reason = result
                    if outcome == "SKIPPED":
                        counts.skipped += 1
                    else:
                        counts.failed += 1
                    self._rows.labels(result=outcome.lower()).inc()
                    # The CloudWatch Logs line Cognito writes: the line number and why, no user data.
                    log.warning("user_import.row", pool=pool.id, job=job_id, line=line, result=outcome, reason=reason)
                since_progress += 1
                if since_progress >= PROGRESS_ROWS:
                    since_progress = 0
                    if not await self._progress(pool.id, job_id, counts):
                        return None
            if final:
                break
            seq += 1
            if not await self._progress(pool.id, job_id, counts):
                return None
        if header is None:
            raise _JobFailed("The CSV file is empty: it has no header row.")
        return SUCCEEDED_MESSAGE

    async def _import_row(self, pool: PoolView, header: _Header, fields: Sequence[str]) -> tuple[str, str] | None:
        """One row: None when the user was imported, else ("SKIPPED" or "FAILED", the reason)."""
        if len(fields) != len(header.columns):
            return "FAILED", "The row does not have one value for each column of the header."
        values = dict(zip(header.columns, fields, strict=True))
        username = values.pop(USERNAME_COLUMN)
        if not username:
            return "FAILED", "cognito:username is required."
        if not is_username(pool.id, username):
            return "FAILED", BAD_USERNAME
        mfa = values.pop(MFA_FLAG).strip().lower()
        if mfa not in ("true", "false"):
            return "FAILED", "cognito:mfa_enabled is required, and must be true or false."
        attributes = {name: value for name, value in values.items() if value != ""}
        verified = [a for a in pool.auto_verified if attributes.get(f"{a}_verified", "").strip().lower() == "true"]
        if not verified:
            return "FAILED", NO_AUTO_VERIFIED
        try:
            await self._users.import_user(pool, username=username, attributes=attributes, mfa_enabled=mfa == "true")
        except UsernameExistsException:
            return "SKIPPED", USER_EXISTS
        except ResourceNotFoundException:
            raise  # the pool is gone: so is the job
        except GatehouseError as refused:
            # The services' messages name attributes, never their values.
            return "FAILED", refused.message
        return None

    async def _progress(self, pool_id: str, job_id: str, counts: _Counts) -> bool:
        """Write the counts so far; False when the job is no longer InProgress (stopped: it is ended here)."""
        written = await self._store.update_user_import_job(
            pool_id, job_id, statuses=[IN_PROGRESS], changes={**counts.changes(), "heartbeat_at": time.time()}
        )
        if written is not None:
            return True
        await self._stop_if_stopping(pool_id, job_id, counts)
        return False

    async def _stop_if_stopping(self, pool_id: str, job_id: str, counts: _Counts) -> None:
        stopped = await self._store.update_user_import_job(
            pool_id,
            job_id,
            statuses=[STOPPING],
            changes={
                **counts.changes(),
                "status": STOPPED,
                "completed_at": time.time(),
                "completion_message": STOPPED_MESSAGE,
            },
        )
        if stopped is not None:
            self._jobs.labels(status=STOPPED).inc()
            await self._store.drop_user_import_upload(pool_id, job_id, None)
            log.info("user_import.stopped", pool=pool_id, job=job_id, **counts.changes())

    async def _finish(self, pool_id: str, job_id: str, status: str, message: str, counts: _Counts) -> None:
        finished = await self._store.update_user_import_job(
            pool_id,
            job_id,
            statuses=[IN_PROGRESS],
            changes={
                **counts.changes(),
                "status": status,
                "completed_at": time.time(),
                "completion_message": message,
            },
        )
        if finished is None:
            await self._stop_if_stopping(pool_id, job_id, counts)
            return
        self._jobs.labels(status=status).inc()
        # The file held personal data: it is not kept past its job.
        await self._store.drop_user_import_upload(pool_id, job_id, None)
        log.info("user_import.finished", pool=pool_id, job=job_id, status=status, **counts.changes())


def is_username(pool_id: str, username: str) -> bool:
    """Whether ``username`` is a UsernameType (botocore's model), as AdminCreateUser's input must be. The file
    reaches the users service past the wire's validation, and a user named with a space, a NUL, a line break
    or 129 characters could never be named in an API call again (AdminGetUser, AdminDeleteUser)."""
    try:
        ServiceModel.load("cognito-idp").validate_input("AdminGetUser", {"UserPoolId": pool_id, "Username": username})
    except InvalidParameterException:
        return False
    return True


@dataclass(frozen=True)
class _Header:
    """A checked header row: the column names, in the file's order."""

    columns: tuple[str, ...]

    @classmethod
    def check(cls, pool: PoolView, fields: Sequence[str]) -> _Header:
        """The file's first row must be the pool's header, in any order ("The order of columns in the CSV file
        doesn't matter"; "All columns in the header must be present"). A column name the pool does not have is
        not repeated in the message: a file without its header would have a user's data in its place."""
        columns = tuple(name.strip() for name in fields)
        expected = csv_header(pool)
        known = set(expected)
        for index, name in enumerate(columns, start=1):
            if name not in known:
                raise _JobFailed(f"The CSV header is not valid: column {index} is not in the user pool's header.")
        if len(set(columns)) != len(columns):
            raise _JobFailed("The CSV header is not valid: a column appears more than once.")
        missing = [name for name in expected if name not in columns]
        if missing:
            raise _JobFailed(f"The CSV header is not valid: it has no {missing[0]} column.")
        return cls(columns)


@dataclass
class CsvStream:
    """A CSV file parsed as its parts arrive: UTF-8 (a byte order mark is allowed), comma-separated, a value
    optionally in double quotes, and a backslash escaping the character after it ("If an attribute value
    contains a comma, you must put a backslash (\\\\) before the comma"). Each :meth:`feed` returns the records
    the parts so far complete, with the line each starts on; a record in quotes that spans lines is held
    until its end arrives."""

    _decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")())
    _pending: list[str] = field(default_factory=list)  # lines of a record not yet complete
    _partial: str = ""  # the text after the last newline
    _state: int = _START_RECORD  # the csv reader's, at the end of the lines so far
    _line: int = 0  # lines handed to the parser so far
    _started: bool = False

    def feed(self, data: bytes, final: bool) -> list[tuple[int, list[str] | None]]:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise _JobFailed("The CSV file is not UTF-8 text.") from exc
        if not self._started and (text or final):
            self._started = True
            text = text.removeprefix("\ufeff")
        pieces = (self._partial + text).split("\n")
        # The text after the last newline waits for the next part; at the end of the file it is the last line.
        last = pieces.pop()
        self._partial = "" if final else last
        complete: list[list[str]] = []
        for line in [piece + "\n" for piece in pieces] + ([last] if final and last else []):
            self._pending.append(line)
            if not self._continues(line):
                complete.append(self._pending)
                self._pending = []
        if final and self._pending:
            complete.append(self._pending)
            self._pending = []
        return self._parse(complete)

    def _continues(self, line: str) -> bool:
        """Whether the record goes on past ``line``: the csv module's reader (escapechar ``\\``, not strict)
        run over it, its state kept from line to line. A quote opens quoting only at a value's start
        (``O"Brien`` is a name), ``""`` in quotes is a quote, a backslash escapes the character after it, a
        line break too; after a closing quote it is a character like any other."""
        if self._state == _START_RECORD and '"' not in line and "\\" not in line:
            return False  # most lines: a record of plain values, whole
        end = 0
        for special in _CSV_SPECIAL.finditer(line):
            if special.start() > end:
                self._state = _csv_step(self._state, _OTHER)
            self._state = _csv_step(self._state, special.group())
            end = special.end()
        if end < len(line):
            self._state = _csv_step(self._state, _OTHER)
        self._state = _csv_step(self._state, _EOL)
        return self._state != _START_RECORD

    def _parse(self, records: list[list[str]]) -> list[tuple[int, list[str] | None]]:
        """Each record's values, with the line it starts on; None for a record the csv module refuses (a value
        past its field size limit, a carriage return inside an unquoted value): that row fails, and the rest of
        the file goes on, as one bad row never fails a whole import."""
        parsed: list[tuple[int, list[str] | None]] = []
        for lines in records:
            reader = csv.reader(lines, escapechar="\\")
            consumed = 0
            try:
                for fields in reader:
                    start = self._line + consumed + 1
                    consumed = reader.line_num
                    if fields:  # a blank line is no record
                        parsed.append((start, fields))
            except csv.Error:
                parsed.append((self._line + consumed + 1, None))
            self._line += len(lines)
        return parsed


def _csv_step(state: int, char: str) -> int:
    """The csv module's reader state after ``char`` (a quote, comma, backslash, CR, LF, _OTHER or _EOL, the end
    of a line it is given), as Modules/_csv.c's parse_process_char moves it with ``escapechar="\\"``,
    ``doublequote=True`` and ``strict=False``. A line the reader would refuse ends its record here (the parse
    then fails the job)."""
    line_end = char in ("\n", "\r", _EOL)
    if state == _START_RECORD:
        if char == _EOL:
            return _START_RECORD
        if char in ("\n", "\r"):
            return _EAT_CRNL
        state = _START_FIELD
    if state == _START_FIELD:
        if line_end:
            return _START_RECORD if char == _EOL else _EAT_CRNL
        return {'"': _IN_QUOTED_FIELD, "\\": _ESCAPE_CHAR, ",": _START_FIELD}.get(char, _IN_FIELD)
    if state == _ESCAPE_CHAR:
        return _AFTER_ESCAPED_CRNL if char in ("\n", "\r") else _IN_FIELD
    if state == _AFTER_ESCAPED_CRNL:
        if char == _EOL:
            return _AFTER_ESCAPED_CRNL
        state = _IN_FIELD
    if state == _IN_FIELD:
        if line_end:
            return _START_RECORD if char == _EOL else _EAT_CRNL
        return {"\\": _ESCAPE_CHAR, ",": _START_FIELD}.get(char, _IN_FIELD)
    if state == _IN_QUOTED_FIELD:
        return {"\\": _ESCAPE_IN_QUOTED_FIELD, '"': _QUOTE_IN_QUOTED_FIELD}.get(char, _IN_QUOTED_FIELD)
    if state == _ESCAPE_IN_QUOTED_FIELD:
        return _IN_QUOTED_FIELD
    if state == _QUOTE_IN_QUOTED_FIELD:
        if line_end:
            return _START_RECORD if char == _EOL else _EAT_CRNL
        return {'"': _IN_QUOTED_FIELD, ",": _START_FIELD}.get(char, _IN_FIELD)
    # _EAT_CRNL: line breaks, then the end of the line; anything else is the reader's error.
    return _EAT_CRNL if char in ("\n", "\r") else _START_RECORD
