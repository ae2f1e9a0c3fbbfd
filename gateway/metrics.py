"""Prometheus metrics, all named ``gatehouse_*``, served at ``GET /metrics``.

One :class:`Metrics` object per application, holding its own :class:`CollectorRegistry` — never the
process-global default registry — so two apps in one process (tests do this) never collide.

Multi-process mode: when ``gatehouse serve`` runs several worker processes, each has its own counters,
and a scrape reaches only one of them. prometheus_client's multiprocess mode solves this: every process
writes its values to memory-mapped files in the directory named by the environment variable
``PROMETHEUS_MULTIPROC_DIR``, and :meth:`Metrics.render` then reads all of them through a fresh registry
with a :class:`~prometheus_client.multiprocess.MultiProcessCollector`, summing the processes' values. The
variable must be set before the process imports prometheus_client (it chooses its value storage at import
time), the directory must exist and should be emptied before the workers start, and it must not be
shared by two unrelated deployments. Gatehouse has no gauges, so no ``mark_process_dead`` is needed.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Seconds. Most calls are a store read or two (sub-millisecond on SQLite); password hashing and SRP
# take tens to hundreds of milliseconds; anything past 5 s is an incident, not a distribution.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric Gatehouse records, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess = MULTIPROC_ENV in os.environ
        reg = self.registry
        self.api_calls = Counter(
            "gatehouse_api_calls",
            "API calls answered, by wire, operation and outcome (success or the error's __type).",
            ["wire", "operation", "outcome"],
            registry=reg,
        )
        self.request_latency = Histogram(
            "gatehouse_request_duration_seconds",
            "Time to answer a request, by wire and operation.",
            ["wire", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.sign_in_attempts = Counter(
            "gatehouse_sign_in_attempts",
            "Sign-in attempts, by user pool, app client and flow.",
            ["pool", "client", "flow"],
            registry=reg,
        )
        self.sign_in_successes = Counter(
            "gatehouse_sign_in_successes",
            "Sign-ins that ended in tokens, by user pool, app client and flow.",
            ["pool", "client", "flow"],
            registry=reg,
        )
        self.sign_in_failures = Counter(
            "gatehouse_sign_in_failures",
            "Sign-ins refused, by user pool, app client, flow and reason.",
            ["pool", "client", "flow", "reason"],
            registry=reg,
        )
        self.sign_ups = Counter("gatehouse_sign_ups", "Users signed up, by user pool.", ["pool"], registry=reg)
        self.confirmations = Counter(
            "gatehouse_confirmations",
            "Codes confirmed, by user pool and kind (sign_up, attribute, forgot_password).",
            ["pool", "kind"],
            registry=reg,
        )
        self.tokens_issued = Counter(
            "gatehouse_tokens_issued",
            "Tokens issued, by user pool and token_use (id, access, refresh).",
            ["pool", "token_use"],
            registry=reg,
        )
        self._call_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[object, ...], Counter] = {}
        self._sign_in_children: dict[tuple[str, str, str], tuple[Counter, Counter]] = {}
        self._token_children: dict[str, tuple[Counter, Counter, Counter]] = {}
        self.trigger_invocations = Counter(
            "gatehouse_trigger_invocations",
            "Lambda trigger functions invoked, by user pool, trigger (LambdaConfig member) and outcome.",
            ["pool", "trigger", "outcome"],
            registry=reg,
        )
        self.front_door_requests = Counter(
            "gatehouse_front_door_requests",
            "Requests the front door checked for an app behind it, by app and outcome (allowed, unauthenticated, "
            "forbidden, public: to one of the app's public paths).",
            ["app", "outcome"],
            registry=reg,
        )
        self.front_door_sign_ins = Counter(
            "gatehouse_front_door_sign_ins",
            "Sign-ins through the front door that finished (signed_in) or did not (failed), by app.",
            ["app", "outcome"],
            registry=reg,
        )
        self.trigger_duration = Histogram(
            "gatehouse_trigger_duration_seconds",
            "Time a trigger function took to answer (or to fail), by trigger.",
            ["trigger"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.codes_sent = Counter(
            "gatehouse_codes_sent",
            "Verification codes and invitations sent, by user pool, medium and purpose.",
            ["pool", "medium", "purpose"],
            registry=reg,
        )

    def trigger_finished(self, pool: str, trigger: str, outcome: str, seconds: float) -> None:
        """Count one invocation of a pool's trigger function (``outcome``: answered, function_error (it raised),
        invoke_error (not invoked, or no answer in time), unreadable_output) and its duration."""
        self.inc(self.trigger_invocations, pool=pool, trigger=trigger, outcome=outcome)
        self.trigger_duration.labels(trigger=trigger).observe(seconds)  # (a network call: the look-up is nothing)

    def inc(self, counter: Counter, **labels: str) -> None:
        """``counter.labels(**labels).inc()``, with the labelled child looked up once per label set."""
        key = (id(counter), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = counter.labels(**labels)
        child.inc()

    def sign_in_counters(self, pool: str, client: str, flow: str) -> tuple[Counter, Counter]:
        """The ``sign_in_attempts`` and ``sign_in_successes`` children of one pool, client and flow, looked up
        once for both (every sign-in step counts one, and most count the other)."""
        key = (pool, client, flow)
        children = self._sign_in_children.get(key)
        if children is None:
            children = self._sign_in_children[key] = (
                self.sign_in_attempts.labels(pool=pool, client=client, flow=flow),
                self.sign_in_successes.labels(pool=pool, client=client, flow=flow),
            )
        return children

    def token_counters(self, pool: str) -> tuple[Counter, Counter, Counter]:
        """The ``tokens_issued`` children of one pool for the ID, access and refresh token, looked up once."""
        children = self._token_children.get(pool)
        if children is None:
            children = self._token_children[pool] = (
                self.tokens_issued.labels(pool=pool, token_use="id"),
                self.tokens_issued.labels(pool=pool, token_use="access"),
                self.tokens_issued.labels(pool=pool, token_use="refresh"),
            )
        return children

    def call_finished(self, wire: str, operation: str, outcome: str, seconds: float) -> None:
        """Count one API call and its latency. The labelled children are looked up once per label set:
        ``labels()`` costs more than the increment itself, and this runs on every request."""
        key = (wire, operation, outcome)
        children = self._call_children.get(key)
        if children is None:
            children = (
                self.api_calls.labels(wire=wire, operation=operation, outcome=outcome),
                self.request_latency.labels(wire=wire, operation=operation),
            )
            self._call_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for ``GET /metrics``."""
        if self.multiprocess:
            # A fresh registry each scrape: the collector reads every process's files at collect time,
            # and registering it in self.registry would report this process's values twice.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # its __init__ is unannotated
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        """A further ``gatehouse_*`` counter in this registry, for a service that owns its own metrics."""
        return Counter(name, documentation, labels, registry=self.registry)
