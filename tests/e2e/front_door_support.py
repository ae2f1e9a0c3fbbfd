"""What the front door's end-to-end modules share: a browser-like visitor of an app behind the front door, and
what the upstream echo app (tests/fakes/echo_app.py) says it was sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from tests.e2e.oauth_support import Browser
from tests.support import GatehouseServer


class Visitor:
    """A browser's part: one cookie jar, redirects followed by hand across the app's host and Gatehouse's."""

    def __init__(self, app: str, password: str) -> None:
        self.app = app
        self.password = password
        self.http = requests.Session()

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.http.get(url if "://" in url else self.app + url, allow_redirects=False, timeout=10, **kwargs)

    def follow(self, response: requests.Response) -> requests.Response:
        for _ in range(10):
            if response.status_code not in (301, 302, 303):
                return response
            location = response.headers["Location"]
            if "://" not in location:
                base = urlsplit(response.url)
                location = f"{base.scheme}://{base.netloc}{location}"
            response = self.get(location)
        raise AssertionError("too many redirects")

    def sign_in(self, path: str, username: str) -> requests.Response:
        """Ask the app for ``path``, sign in on the hosted page; the first answer that is not a redirect."""
        page = self.follow(self.get(path))
        assert page.status_code == 200 and "Sign in" in page.text, (page.status_code, page.text[:500])
        fields = {**Browser.form_fields(page), "username": username, "password": self.password}
        action = Browser.form_action(page)
        base = urlsplit(page.url)
        target = action if "://" in action else f"{base.scheme}://{base.netloc}{action}"
        return self.follow(self.http.post(target, data=fields, allow_redirects=False, timeout=10))


def seen_headers(response: requests.Response) -> dict[str, str]:
    """The headers the upstream echo app was sent (names in lower case)."""
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.headers.get("X-Upstream") == "echo", response.headers
    return {name.lower(): value for name, value in response.json()["headers"]}


def other_session(server: GatehouseServer, host: str, username: str, password: str) -> str:
    """A session cookie of the app ``other`` (on ``host``) for ``username``, signed in at Gatehouse's address with
    other's host in the Host header, as a proxy in front of that app would route it."""
    http = requests.Session()
    start = http.get(f"{server.url}/_gatehouse/start", headers={"Host": host}, allow_redirects=False, timeout=10)
    page = http.get(start.headers["Location"], timeout=10)
    fields = {**Browser.form_fields(page), "username": username, "password": password}
    answer = http.post(f"{server.url}{Browser.form_action(page)}", data=fields, allow_redirects=False, timeout=10)
    while answer.headers["Location"].startswith(server.url):
        answer = http.get(answer.headers["Location"], allow_redirects=False, timeout=10)
    callback = urlsplit(answer.headers["Location"])
    assert callback.netloc == host, callback
    done = http.get(f"{server.url}{callback.path}?{callback.query}", headers={"Host": host}, allow_redirects=False,
                    timeout=10)  # fmt: skip
    assert done.status_code == 302, done.text[:300]
    return str(done.cookies["gatehouse-session"])
