"""Metrics: gatehouse_* names and labels in the exposition, per-instance registries, multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import requests
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics import LATENCY_BUCKETS, Metrics
from tests.support import GatehouseServer

REPO_ROOT = Path(__file__).resolve().parents[1]


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (sample name, labels)."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_counters_appear_with_gatehouse_names_and_labels() -> None:
    metrics = Metrics()
    metrics.api_calls.labels(wire="cognito-idp", operation="InitiateAuth", outcome="success").inc()
    metrics.api_calls.labels(wire="cognito-idp", operation="InitiateAuth", outcome="success").inc()
    metrics.api_calls.labels(wire="cognito-idp", operation="InitiateAuth", outcome="NotAuthorizedException").inc()
    pool, client = "us-east-1_AbCdEf123", "3n4b5urk1ft4fl3mg5e62d9ado"
    metrics.sign_in_attempts.labels(pool=pool, client=client, flow="USER_PASSWORD_AUTH").inc(3)
    metrics.sign_in_successes.labels(pool=pool, client=client, flow="USER_PASSWORD_AUTH").inc(2)
    metrics.sign_in_failures.labels(pool=pool, client=client, flow="USER_PASSWORD_AUTH", reason="bad_password").inc()
    metrics.sign_ups.labels(pool=pool).inc()
    metrics.confirmations.labels(pool=pool, kind="sign_up").inc()
    metrics.tokens_issued.labels(pool=pool, token_use="access").inc(2)
    metrics.codes_sent.labels(pool=pool, medium="email", purpose="sign_up").inc()

    body, content_type = metrics.render()

    assert content_type == CONTENT_TYPE_LATEST
    text = body.decode()
    assert "# TYPE gatehouse_api_calls_total counter" in text
    # prometheus_client writes labels in alphabetical order.
    expected = 'gatehouse_api_calls_total{operation="InitiateAuth",outcome="success",wire="cognito-idp"} 2.0'
    assert expected in text.splitlines()
    found = samples(body)
    flow = "USER_PASSWORD_AUTH"
    assert (
        found[
            key(
                "gatehouse_api_calls_total",
                wire="cognito-idp",
                operation="InitiateAuth",
                outcome="NotAuthorizedException",
            )
        ]
        == 1.0
    )
    assert found[key("gatehouse_sign_in_attempts_total", pool=pool, client=client, flow=flow)] == 3.0
    assert found[key("gatehouse_sign_in_successes_total", pool=pool, client=client, flow=flow)] == 2.0
    assert (
        found[
            key(
                "gatehouse_sign_in_failures_total",
                pool=pool,
                client=client,
                flow=flow,
                reason="bad_password",
            )
        ]
        == 1.0
    )
    assert found[key("gatehouse_sign_ups_total", pool=pool)] == 1.0
    assert found[key("gatehouse_confirmations_total", pool=pool, kind="sign_up")] == 1.0
    assert found[key("gatehouse_tokens_issued_total", pool=pool, token_use="access")] == 2.0
    assert found[key("gatehouse_codes_sent_total", pool=pool, medium="email", purpose="sign_up")] == 1.0


def test_latency_histogram_buckets_span_half_a_millisecond_to_five_seconds() -> None:
    metrics = Metrics()
    metrics.request_latency.labels(wire="oauth2", operation="token").observe(0.0007)
    metrics.request_latency.labels(wire="oauth2", operation="token").observe(3.0)

    found = samples(metrics.render()[0])

    assert LATENCY_BUCKETS[0] == 0.0005
    assert LATENCY_BUCKETS[-1] == 5.0
    labels = {"wire": "oauth2", "operation": "token"}
    assert found[key("gatehouse_request_duration_seconds_bucket", le="0.0005", **labels)] == 0.0
    assert found[key("gatehouse_request_duration_seconds_bucket", le="0.001", **labels)] == 1.0
    assert found[key("gatehouse_request_duration_seconds_bucket", le="2.5", **labels)] == 1.0
    assert found[key("gatehouse_request_duration_seconds_bucket", le="5.0", **labels)] == 2.0
    assert found[key("gatehouse_request_duration_seconds_count", **labels)] == 2.0
    assert found[key("gatehouse_request_duration_seconds_sum", **labels)] == 3.0007


def test_two_instances_do_not_collide() -> None:
    # With the process-global registry the second Metrics() would raise "Duplicated timeseries".
    first, second = Metrics(), Metrics()
    first.sign_ups.labels(pool="pool-a").inc()

    assert first.registry is not second.registry
    assert first.registry.get_sample_value("gatehouse_sign_ups_total", {"pool": "pool-a"}) == 1.0
    assert second.registry.get_sample_value("gatehouse_sign_ups_total", {"pool": "pool-a"}) is None
    assert b'pool="pool-a"' not in second.render()[0]


def test_given_registry_is_used() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.tokens_issued.labels(pool="p", token_use="id").inc()

    assert metrics.registry is registry
    assert registry.get_sample_value("gatehouse_tokens_issued_total", {"pool": "p", "token_use": "id"}) == 1.0


def test_single_process_mode_without_the_env_var() -> None:
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert Metrics().multiprocess is False


# prometheus_client picks its value storage when it is first imported, so multiprocess mode can only be
# tested in fresh interpreters started with PROMETHEUS_MULTIPROC_DIR already set.
WORKER = textwrap.dedent(
    """
    from gateway.metrics import Metrics

    metrics = Metrics()
    assert metrics.multiprocess
    metrics.sign_ups.labels(pool="shared-pool").inc()
    metrics.api_calls.labels(wire="cognito-idp", operation="SignUp", outcome="success").inc()
    metrics.request_latency.labels(wire="cognito-idp", operation="SignUp").observe(0.003)
    """
)
SCRAPER = textwrap.dedent(
    """
    import sys
    from gateway.metrics import Metrics

    body, content_type = Metrics().render()
    sys.stdout.write(content_type + "\\n" + body.decode())
    """
)


def run_python(code: str, multiproc_dir: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_multiprocess_mode_sums_every_process(tmp_path: Path) -> None:
    run_python(WORKER, tmp_path)
    run_python(WORKER, tmp_path)
    # Each worker left its own files behind, named after its pid.
    assert len(list(tmp_path.glob("counter_*.db"))) == 2

    content_type, _, body = run_python(SCRAPER, tmp_path).partition("\n")

    assert content_type == CONTENT_TYPE_LATEST
    found = samples(body.encode())
    assert found[key("gatehouse_sign_ups_total", pool="shared-pool")] == 2.0
    assert found[key("gatehouse_api_calls_total", wire="cognito-idp", operation="SignUp", outcome="success")] == 2.0
    assert found[key("gatehouse_request_duration_seconds_count", wire="cognito-idp", operation="SignUp")] == 2.0


# --- a real server's /metrics --------------------------------------------------------------------------------


def scrape(server: GatehouseServer) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``GET /metrics`` on a fresh connection, parsed with prometheus_client's own text parser."""
    reply = requests.get(f"{server.url}/metrics", headers={"Connection": "close"}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"] == CONTENT_TYPE_LATEST
    return samples(reply.content)


def list_pools(server: GatehouseServer, times: int) -> None:
    """``times`` ListUserPools calls, each on a connection of its own (so that SO_REUSEPORT spreads them over
    the workers: a kept-alive connection stays with one)."""
    for _ in range(times):
        client = server.client()
        client.list_user_pools(MaxResults=10)
        client.close()


LIST_POOLS = ("gatehouse_api_calls_total", frozenset({("wire", "cognito-idp"), ("operation", "ListUserPools"),
                                                      ("outcome", "success")}))  # fmt: skip


def test_one_server_counts_alone_whatever_prometheus_multiproc_dir_says(tmp_path: Path) -> None:
    """A lone server counts in its own memory: PROMETHEUS_MULTIPROC_DIR in its environment (set for another
    program, or left over) made every scrape a 500 while that folder did not exist, and once it did, summed in
    the files it held (another process's counts)."""
    missing = tmp_path / "not-there"
    server = GatehouseServer(tmp_path / "a", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(missing)})
    server.start()
    try:
        list_pools(server, 2)
        assert scrape(server)[LIST_POOLS] == 2.0
    finally:
        server.stop()
    assert not missing.exists()

    other = tmp_path / "other-program"
    other.mkdir()
    run_python(WORKER, other)  # another process's counts: one sign-up in "shared-pool"
    before = sorted(path.name for path in other.iterdir())
    server = GatehouseServer(tmp_path / "b", extra_env={"PROMETHEUS_MULTIPROC_DIR": str(other)})
    server.start()
    try:
        found = scrape(server)
        assert key("gatehouse_sign_ups_total", pool="shared-pool") not in found
        assert LIST_POOLS not in found
    finally:
        server.stop()
    assert sorted(path.name for path in other.iterdir()) == before  # nor did the server write there


def test_two_workers_scrapes_add_up_and_parse(tmp_path: Path) -> None:
    """With ``--workers 2`` each process counts what it served, and every scrape, whichever worker answers it,
    gives the sum of both; the exposition parses with prometheus_client's own text parser."""
    server = GatehouseServer(tmp_path / "data", workers=2)
    server.start()
    try:
        list_pools(server, 30)
        folders = list((tmp_path / "data" / "prometheus").iterdir())
        assert len(folders) == 1  # this server's, named by its pid
        # Both workers served some of the calls: each wrote counters of its own.
        assert len(list(folders[0].glob("counter_*.db"))) == 2
        for _ in range(6):  # fresh connections: the scrapes are answered by either worker
            assert scrape(server)[LIST_POOLS] == 30.0
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0
    assert not folders[0].exists()  # removed once the server stopped
