"""The config file's ``front_door:`` section: apps that sign their users in through a user pool without any
sign-in of their own, behind a reverse proxy that asks Gatehouse (nginx, Traefik, Caddy) or behind Gatehouse
itself (``upstream``). See docs/front-door.md.

::

    front_door:
      apps:
        - name: wiki                          # letters, digits, - and _; names the app in logs and metrics
          url: https://wiki.example.com       # the app's origin as browsers see it (no path)
          user_pool: us-east-1_Example01      # the pool users sign in to
          client_id: wikiapp00000000000000001 # its app client: code flow, scope openid, and the callback URL
                                              # https://wiki.example.com/_gatehouse/callback
          allowed_groups: [staff]             # optional: only members of one of these groups get in
          upstream: http://127.0.0.1:8080     # optional: Gatehouse forwards the app's requests there itself

Each app's client is checked when the file is loaded if the file declares it (its pool is one of the file's):
it must allow the ``code`` flow and the ``openid`` scope and list the app's callback URL. A client made through
the API is checked when a browser first signs in.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from gateway.services.front_door import CALLBACK_PATH, PREFIX, FrontDoorApp

__all__ = ["FrontDoorAppConfig", "FrontDoorConfig"]


def _expected(message: str) -> PydanticCustomError:
    """A problem reported as the config file reports its own ("<key>: expected ..."), not as pydantic's
    "Value error, ..."."""
    return PydanticCustomError("gatehouse_config", "{summary}", {"summary": message})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _origin(value: str) -> str:
    """An http(s) origin: scheme, host and optional port, nothing else (a trailing slash is dropped)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _expected("expected an http:// or https:// URL with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise _expected("expected an origin: scheme, host and port only (no path, query or user)")
    port = _port(value)
    # As a browser names the host in Host: the scheme's default port left out (RFC 9110 §4.2.1, §7.2), so that
    # https://wiki.example.com:443 is found by the Host header "wiki.example.com".
    host = parts.netloc.lower()
    if host.endswith(":") or port is not None:
        host = host.rsplit(":", 1)[0]
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_host(url: str) -> str | None:
    """The host and port of ``url`` (any path left aside) as a browser's Host header names them, the default port
    left out; None for a URL that is not http(s)."""
    parts = urlsplit(url)
    try:
        return urlsplit(_origin(f"{parts.scheme}://{parts.netloc}")).netloc
    except PydanticCustomError:
        return None


def _port(value: str) -> int | None:
    """The URL's port, if it names one; a port that is not a number from 1 to 65535 is an error."""
    try:
        port = urlsplit(value).port
    except ValueError as exc:
        raise _expected("expected a port number from 1 to 65535") from exc
    if port == 0:
        raise _expected("expected a port number from 1 to 65535")
    return port


class FrontDoorAppConfig(_Model):
    """One app behind the front door."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    url: str = Field(description="The app's origin as browsers see it, e.g. https://wiki.example.com.")
    user_pool: str = Field(pattern=r"^[\w-]+_[0-9a-zA-Z]+$", description="The id of the pool users sign in to.")
    client_id: str = Field(pattern=r"^[\w+]+$", max_length=128, description="The pool's app client for this app.")
    allowed_groups: list[str] = Field(
        default_factory=list, description="Only members of one of these groups get in (none: every user)."
    )
    upstream: str | None = Field(
        None, description="Where Gatehouse forwards the app's requests itself (none: a proxy in front asks it)."
    )
    pass_tokens: bool = Field(
        False,
        description="Hand the app the session's ID and access tokens too (X-Gatehouse-Id-Token, -Access-Token).",
    )
    public_paths: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Paths let through without a session or identity headers (webhooks, health checks): "
        "/hooks/ stands for everything under /hooks/, /healthz for itself alone.",
    )

    @field_validator("url")
    @classmethod
    def _url_is_origin(cls, value: str) -> str:
        return _origin(value)

    @field_validator("upstream")
    @classmethod
    def _upstream_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise _expected("expected an http:// or https:// URL with a host (a path is kept as the prefix)")
        _port(value)  # else every request to the app would fail on it
        return value.rstrip("/")

    bearer_clients: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="App clients of the pool whose users' access tokens (Authorization: Bearer) stand in for a "
        "session, for scripts and services calling the app's API.",
    )

    @field_validator("bearer_clients")
    @classmethod
    def _bearer_clients(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[\w+]{1,128}", value):
                raise _expected(f"{value!r}: expected an app client id (1 to 128 letters, digits, _ or +)")
        return values

    @field_validator("public_paths")
    @classmethod
    def _public_paths(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith("/") or len(value) > 1024:
                raise _expected(f"{value!r}: expected a path starting with /, up to 1024 characters")
            # As FrontDoorApp.is_public reads a request's path: decoded, printable ASCII, no dot segments.
            if any(c <= " " or c > "~" or c in "%?#;\\" for c in value):
                raise _expected(f"{value!r}: expected printable ASCII without spaces, %, ?, #, ; or \\")
            # (Nor one of dots alone, which Windows reads as . or ..: no request would match it.)
            if any(segment and not segment.strip(".") for segment in value.split("/")):
                raise _expected(f"{value!r}: a path without . or .. segments")
            if value == "/":
                raise _expected("'/' would make every path public: leave the app out of front_door instead")
            if value == PREFIX or value.startswith(PREFIX + "/"):
                raise _expected(f"{value!r}: the front door's own endpoints are under {PREFIX}/")
        return values

    @property
    def callback_url(self) -> str:
        return self.url + CALLBACK_PATH

    def to_app(self) -> FrontDoorApp:
        return FrontDoorApp(
            name=self.name,
            url=self.url,
            pool_id=self.user_pool,
            client_id=self.client_id,
            allowed_groups=tuple(self.allowed_groups),
            upstream=self.upstream,
            pass_tokens=self.pass_tokens,
            public_paths=tuple(self.public_paths),
            bearer_clients=tuple(self.bearer_clients),
        )


class FrontDoorConfig(_Model):
    """Apps that sign their users in through a user pool (docs/front-door.md)."""

    apps: list[FrontDoorAppConfig] = Field(default_factory=list)
