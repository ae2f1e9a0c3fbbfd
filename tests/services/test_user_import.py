"""User import jobs' time-driven states, which an end-to-end test would wait a day (or five minutes) for: a job
never started is Expired, a running job whose process stopped writing progress is Failed (or Stopped). Jobs are
written to a real store as they would stand after that time. Also the CSV reader on files cut into parts
anywhere, as the store hands them back."""

from __future__ import annotations

import csv
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import PreconditionNotMetException
from gateway.metrics import Metrics
from gateway.secretbox import SecretBox
from gateway.services.container import Services
from gateway.services.messaging import Messenger, OutboxSender
from gateway.services.passwords import Argon2Params, PasswordHasher
from gateway.services.user_import import (
    INTERRUPTED_MESSAGE,
    STALE_JOB_SECONDS,
    STOPPED_MESSAGE,
    UNSTARTED_JOB_SECONDS,
    CsvStream,
    _JobFailed,
)
from gateway.settings import Settings
from gateway.storage.base import UserImportJobRecord
from gateway.storage.sqlite import SqliteStore

ROLE = "arn:aws:iam::111111111111:role/Import"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    store = await SqliteStore.open(tmp_path / "db")
    outbox = OutboxSender(tmp_path / "outbox.jsonl")
    services = Services.build(
        Settings(data_dir=tmp_path), store, Metrics(), SecretBox(SecretBox.generate_key()),
        PasswordHasher(Argon2Params(memory_kib=1024, time_cost=1)), Messenger(outbox, outbox),
        code_key=b"c" * 32, admin_credentials={}, fake_srp_secret=b"f" * 32,
    )  # fmt: skip
    yield services
    await services.imports.close()
    await services.messenger.close()
    await store.close()


async def _pool(services: Services) -> str:
    pool = await services.pools.create_pool("imports", {"AutoVerifiedAttributes": ["email"]})
    return pool.id


async def test_a_job_never_started_within_a_day_is_expired(services: Services) -> None:
    pool_id = await _pool(services)
    created = time.time() - UNSTARTED_JOB_SECONDS - 1
    job = UserImportJobRecord(
        pool_id=pool_id,
        job_id="import-oldjob0001",
        list_key=f"{created:017.6f}-import-oldjob0001",
        name="old",
        role_arn=ROLE,
        status="Created",
        created_at=created,
        url_expires_at=created + 3600,
    )
    await services.store.create_user_import_job(job)
    await services.store.add_user_import_chunk(pool_id, job.job_id, "u1", 0, b"cognito:username\n")
    assert (await services.imports.get_job(pool_id, job.job_id)).status == "Expired"
    # Its file is gone, and it never starts.
    assert await services.store.read_user_import_chunk(pool_id, job.job_id, "u1", 0) is None
    with pytest.raises(PreconditionNotMetException):
        await services.imports.start_job(pool_id, job.job_id)


async def test_the_purge_expires_a_job_nobody_looks_at_and_counts_it_once(services: Services) -> None:
    pool_id = await _pool(services)
    created = time.time() - UNSTARTED_JOB_SECONDS - 1
    for job_id, created_at in (("import-oldjob0002", created), ("import-newjob0003", time.time())):
        await services.store.create_user_import_job(
            UserImportJobRecord(
                pool_id=pool_id,
                job_id=job_id,
                list_key=f"{created_at:017.6f}-{job_id}",
                name=job_id,
                role_arn=ROLE,
                status="Created",
                created_at=created_at,
                url_expires_at=created_at + 3600,
            )
        )
    await services.store.add_user_import_chunk(pool_id, "import-oldjob0002", "u1", 0, b"cognito:username\n")

    def expired_count() -> float | None:
        return services.metrics.registry.get_sample_value("gatehouse_user_import_jobs_total", {"status": "Expired"})

    before = expired_count() or 0.0
    # What the periodic purge runs (gateway/app.py), twice: the second round finds nothing more to expire.
    assert await services.imports.expire_unstarted(time.time()) == 1
    assert await services.store.purge_expired(time.time()) >= 1
    assert await services.imports.expire_unstarted(time.time()) == 0
    assert expired_count() == before + 1
    assert (await services.store.get_user_import_job(pool_id, "import-oldjob0002")).status == "Expired"
    assert await services.store.read_user_import_chunk(pool_id, "import-oldjob0002", "u1", 0) is None
    assert (await services.store.get_user_import_job(pool_id, "import-newjob0003")).status == "Created"
    # Looked at afterwards, the job is not counted again.
    assert (await services.imports.get_job(pool_id, "import-oldjob0002")).status == "Expired"
    assert expired_count() == before + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b\n1,2\n", [(1, ["a", "b"]), (2, ["1", "2"])]),
        ("a,b\r\n1,2", [(1, ["a", "b"]), (2, ["1", "2"])]),
        ('\ufeffa,b\n"x\ny",2\n3,4\n', [(1, ["a", "b"]), (2, ["x\ny", "2"]), (4, ["3", "4"])]),
        ("a,b\n\n1\\,5,2\n", [(1, ["a", "b"]), (3, ["1,5", "2"])]),
        ('a,b\n"say ""hi""",2\n', [(1, ["a", "b"]), (2, ['say "hi"', "2"])]),
        ("é,ü\n", [(1, ["é", "ü"])]),
        # A quoted value ending in an escaped backslash closes its quotes; a quote inside a value opens none.
        ('"C:\\\\",x\nO"Brien,y\n"1\n2",z\n', [(1, ["C:\\", "x"]), (2, ['O"Brien', "y"]), (3, ["1\n2", "z"])]),
        # A backslash before a line break escapes it: the record goes on.
        ("a\\\nb,c\nd,e\n", [(1, ["a\nb", "c"]), (3, ["d", "e"])]),
    ],
)
def test_csv_stream_reads_the_same_records_whatever_the_parts(text: str, expected: list[tuple[int, list[str]]]) -> None:
    data = text.encode()
    for size in (1, 2, 3, 5, 7, len(data) or 1):
        stream = CsvStream()
        records: list[tuple[int, list[str]]] = []
        for start in range(0, len(data), size):
            records += stream.feed(data[start : start + size], False)
        records += stream.feed(b"", True)
        assert records == expected, size


def test_csv_stream_cut_anywhere_reads_what_the_csv_module_reads_whole() -> None:
    """Random files of the characters that matter (quotes, escapes, commas, line breaks), cut into parts at
    random: the records are those the csv module reads from the whole file."""
    rng = random.Random(20261127)
    alphabet = ["a", ",", '"', "\\", "\n", "\r", " ", '""', "\r\n", "é"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        lines = text.split("\n")
        try:
            whole = [r for r in csv.reader([*(line + "\n" for line in lines[:-1]), lines[-1]], escapechar="\\") if r]
        except csv.Error:
            continue  # a file the job fails whole
        data = text.encode()
        cuts = sorted(rng.sample(range(len(data) + 1), min(3, len(data) + 1)))
        stream = CsvStream()
        records: list[list[str]] = []
        for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
            records += [fields for _, fields in stream.feed(data[start:stop], False)]
        records += [fields for _, fields in stream.feed(b"", True)]
        assert records == whole, repr(text)


def test_csv_stream_gives_a_record_it_cannot_read_as_none() -> None:
    """A record past the csv module's field limit (however the file is cut) is None at its own line; the
    records after it are read, on their lines."""
    data = ("a,b\n" + "x" * (csv.field_size_limit() + 1) + ',1\n"p\nq",2\nc,d\n').encode()
    for size in (4096, 65536, len(data)):
        stream = CsvStream()
        records: list[tuple[int, list[str] | None]] = []
        for start in range(0, len(data), size):
            records += stream.feed(data[start : start + size], False)
        records += stream.feed(b"", True)
        assert records == [(1, ["a", "b"]), (2, None), (3, ["p\nq", "2"]), (5, ["c", "d"])], size


def test_csv_stream_refuses_text_that_is_not_utf8() -> None:
    stream = CsvStream()
    stream.feed(b"a,b\n", False)
    with pytest.raises(_JobFailed):
        stream.feed(b"\xff\xfe\n", True)


async def test_a_running_job_whose_process_stopped_is_failed(services: Services) -> None:
    pool_id = await _pool(services)
    job = await services.imports.create_job(pool_id, "lost", ROLE, None)
    stale = time.time() - STALE_JOB_SECONDS - 1
    await services.store.update_user_import_job(
        pool_id,
        job.job_id,
        statuses=["Created"],
        changes={"status": "InProgress", "started_at": stale, "heartbeat_at": stale},
    )
    settled = await services.imports.get_job(pool_id, job.job_id)
    assert (settled.status, settled.completion_message) == ("Failed", INTERRUPTED_MESSAGE)
    assert settled.completed_at is not None


async def test_a_stopping_job_whose_process_stopped_is_stopped(services: Services) -> None:
    pool_id = await _pool(services)
    job = await services.imports.create_job(pool_id, "lost", ROLE, None)
    stale = time.time() - STALE_JOB_SECONDS - 1
    await services.store.update_user_import_job(
        pool_id, job.job_id, statuses=["Created"], changes={"status": "Stopping", "heartbeat_at": stale}
    )
    page = await services.imports.list_jobs(pool_id, None, 10)
    assert [(j.status, j.completion_message) for j in page.items] == [("Stopped", STOPPED_MESSAGE)]


async def test_a_running_job_with_recent_progress_stays_running(services: Services) -> None:
    pool_id = await _pool(services)
    job = await services.imports.create_job(pool_id, "busy", ROLE, None)
    await services.store.update_user_import_job(
        pool_id, job.job_id, statuses=["Created"], changes={"status": "InProgress", "heartbeat_at": time.time()}
    )
    assert (await services.imports.get_job(pool_id, job.job_id)).status == "InProgress"
