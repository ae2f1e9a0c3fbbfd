"""The hosted UI as a web application, under attack: forms that stand for an API operation take only what that
operation takes (botocore's model); SetUICustomization's CSS styles Cognito's customizable classes and nothing
else, however the stylesheet is written (comments, escapes, at-rules, element selectors); and an IdP's metadata
cannot run a script on the SAML HTTP-POST page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from botocore.exceptions import ClientError

from tests.e2e.oauth_support import CALLBACK, PASSWORD, Browser, OAuthPool, make_pool, make_user, pkce_pair, query_of
from tests.fakes.saml import FakeSamlIdP
from tests.support import GatehouseServer

_ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')


@pytest.fixture(scope="module")
def pool(gatehouse: GatehouseServer, idp: Any) -> OAuthPool:
    created = make_pool(idp, gatehouse.url, "hosted-hostile")
    idp.create_user_pool_domain(UserPoolId=created.pool_id, Domain="hosted-hostile-ui")  # for SetUICustomization
    make_user(idp, created.pool_id, "alice")
    return created


def _page(gatehouse: GatehouseServer, pool: OAuthPool, path: str) -> tuple[Browser, Any]:
    """A browser on one of the hosted pages of a fresh authorization request."""
    browser = Browser(gatehouse.url)
    _, challenge = pkce_pair()
    login = browser.follow(
        browser.get(browser.authorize_url(pool.public_id, code_challenge=challenge, code_challenge_method="S256"))
    )
    assert login.status_code == 200
    rid = re.search(r"rid=([\w-]+)", login.url)
    assert rid
    page = browser.get(f"{path}?rid={rid.group(1)}&username=alice")
    assert page.status_code == 200
    return browser, page


def _usernames(idp: Any, pool: OAuthPool) -> set[str]:
    return {user["Username"] for user in idp.list_users(UserPoolId=pool.pool_id)["Users"]}


# Names UsernameType ([\p{L}\p{M}\p{S}\p{N}\p{P}]+, 1-128 characters) excludes: a zero-width joiner (alice +
# U+200D is shown as alice), a line break, a NUL, a space, and one character too many.
_BAD_NAMES = ["alice\u200d", "mal\nlory", "\x00mallory", "mal lory", "m" * 129]


@pytest.mark.parametrize("name", _BAD_NAMES, ids=["zwj", "newline", "nul", "space", "too-long"])
def test_sign_up_page_refuses_the_usernames_sign_up_refuses(
    gatehouse: GatehouseServer, idp: Any, public_idp: Any, pool: OAuthPool, name: str
) -> None:
    before = _usernames(idp, pool)
    # The API refuses the name, as botocore's model says.
    with pytest.raises(ClientError) as api:
        public_idp.sign_up(ClientId=pool.public_id, Username=name, Password=PASSWORD)
    assert api.value.response["Error"]["Code"] == "InvalidParameterException"
    # So does the page that stands for it: a clear error on the form, and no user made.
    browser, form = _page(gatehouse, pool, "/signup")
    answer = browser.submit(form, {"username": name, "password": PASSWORD})
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/html")
    assert _ALERT.findall(answer.text) == [
        "Enter a username of 1 to 128 letters, digits, symbols or punctuation marks, without spaces."
    ]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    assert _usernames(idp, pool) == before


def test_a_fullwidth_look_alike_is_another_user_on_the_page_as_on_the_api(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    """Cognito compares usernames without case but without Unicode folding: U+FF41... is a different name,
    taken by the page exactly as the API takes it, and it never signs in as alice."""
    browser, form = _page(gatehouse, pool, "/signup")
    answer = browser.submit(form, {"username": "\uff41\uff4c\uff49\uff43\uff45", "password": PASSWORD})
    assert answer.status_code == 303 and "/confirm?" in answer.headers["Location"]
    assert {"alice", "\uff41\uff4c\uff49\uff43\uff45"} <= _usernames(idp, pool)
    assert idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")["UserStatus"] == "CONFIRMED"


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/confirm", {"username": "alice", "code": "9" * 2049}, "Enter the code as you received it."),
        ("/confirm", {"username": "a\u200bb", "code": "123456"}, "Enter a username of 1 to 128"),
        ("/forgotPassword", {"username": "x" * 5000}, "Enter a username of 1 to 128"),
        (
            "/confirmForgotPassword",
            {"username": "alice", "code": "1 2", "password": "New-Password-1"},
            "Enter the code as you received it.",
        ),
        (
            "/confirmForgotPassword",
            {"username": "alice", "code": "123456", "password": "P" * 300},
            "Enter a password of at most 256 characters",
        ),
    ],
    ids=["confirm-long-code", "confirm-zero-width-space", "forgot-long-name", "reset-code-space", "reset-long-pw"],
)
def test_code_and_password_pages_take_only_what_their_operation_takes(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool, path: str, fields: dict[str, str], message: str
) -> None:
    before = idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")
    browser, form = _page(gatehouse, pool, path)
    answer = browser.submit(form, fields)
    assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/html")
    shown = _ALERT.findall(answer.text)
    assert len(shown) == 1 and shown[0].startswith(message), shown
    after = idp.admin_get_user(UserPoolId=pool.pool_id, Username="alice")
    assert after["UserStatus"] == before["UserStatus"] == "CONFIRMED"
    assert after["UserLastModifiedDate"] == before["UserLastModifiedDate"]


# --- SetUICustomization's CSS ---------------------------------------------------------------------------------

_HOSTILE_CSS = {
    # A selector hidden behind what looks like a comment's brace (the old check split on braces first).
    "comment-brace": ".banner-customizable /* { */ , input[type=password] { display: none }",
    "element": "input { display: none }",
    "universal": "* { visibility: hidden }",
    "id": "#username { color: red }",
    "attribute": ".inputField-customizable[value^='a'] { color: red }",
    "pseudo-element": ".banner-customizable::before { content: 'Call +1 555 0100 to sign in' }",
    "media": "@media screen { .banner-customizable { color: red } }",
    "supports": "@supports (display: grid) { .banner-customizable { color: red } }",
    "page": "@page { margin: 0 }",
    "escaped-import": "@\\69mport url(https://evil.example/x.css); .banner-customizable { color: red }",
    "escaped-javascript": ".banner-customizable { background: url(java\\73 cript:alert(1)) }",
    "escaped-class": ".\\65vil { color: red }",
    "trailing-text": ".banner-customizable { color: red } input",
    "open-comment": ".banner-customizable { color: red } /* input { display: none }",
    "no-selector": "{ color: red }",
    # A comment's opening inside a string is text to a browser: what follows it is live CSS, not a comment.
    "string-hides-rules": (
        '.banner-customizable { content: "/*"; } input, body::before { content: "Sign in at evil.example"; }'
        ' .banner-customizable { content: "*/"; }'
    ),
    "string-hides-import": (
        '.banner-customizable { content: "/*" } @import "x.css"; .banner-customizable { content: "*/" }'
    ),
    # Nor is it a comment inside an unquoted url(): the rule after it is live.
    "url-hides-rules": (
        ".banner-customizable { background: url(data:x,/*) } input { display: none } .banner-customizable { x: 1 */ }"
    ),
    # CSS Nesting: a rule of any selector inside a customizable one.
    "nested-rule": ".banner-customizable { input { display: none } }",
    "bad-string": '.banner-customizable { content: "abc\n } input { display: none }',
}


@pytest.mark.parametrize("css", list(_HOSTILE_CSS.values()), ids=list(_HOSTILE_CSS))
def test_css_that_reaches_past_the_customizable_classes_is_refused(idp: Any, pool: OAuthPool, css: str) -> None:
    kept = ".submitButton-customizable { background-color: #0a7d32; }"
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, CSS=kept)
    with pytest.raises(ClientError) as refused:
        idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id, CSS=css)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    stored = idp.get_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.secret_id)["UICustomization"]
    assert stored["CSS"] == kept


def test_css_of_customizable_classes_is_taken_and_served(gatehouse: GatehouseServer, idp: Any, pool: OAuthPool) -> None:
    css = (
        "/* brand */ .banner-customizable, .logo-customizable { padding: 5px 5px 5px 5px; }\n"
        ".submitButton-customizable:hover { background-color: #333; }\n"
        ".background-customizable .label-customizable { font-weight: 700; }"
    )
    answer = idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.public_id, CSS=css)["UICustomization"]
    assert answer["CSS"] == css
    _, login = _page(gatehouse, pool, "/login")
    href = re.search(r'href="([^"]*custom\.css[^"]*)"', login.text)
    assert href
    served = Browser(gatehouse.url).get(href.group(1).replace("&amp;", "&"))
    assert served.status_code == 200 and served.text == css
    assert (
        served.headers["Content-Type"].startswith("text/css") and served.headers["X-Content-Type-Options"] == "nosniff"
    )
    idp.set_ui_customization(UserPoolId=pool.pool_id, ClientId=pool.public_id)


# --- The SAML HTTP-POST page (the one page with an inline script) ----------------------------------------------


def test_a_javascript_endpoint_in_idp_metadata_never_runs(gatehouse: GatehouseServer, idp: Any) -> None:
    """A SAML IdP's metadata names where the browser posts the AuthnRequest. An IdP that names a javascript:
    URL must not get a script run on Gatehouse's origin (where every pool's hosted pages live): such metadata
    is refused at configuration, and the page that posts to a real endpoint keeps a CSP (form-action admits
    network schemes only) that would block one anyway, and cannot be framed."""
    pool_id = idp.create_user_pool(PoolName="hostile-metadata")["UserPool"]["Id"]
    certificate = idp.get_signing_certificate(UserPoolId=pool_id)["Certificate"]
    with FakeSamlIdP(
        sp_entity_id=f"urn:amazon:cognito:sp:{pool_id}",
        acs_url=f"{gatehouse.url}/saml2/idpresponse",
        sp_cert_pem=f"-----BEGIN CERTIFICATE-----\n{certificate}\n-----END CERTIFICATE-----\n",
        post_only=True,
    ) as fake:
        metadata = fake.metadata_xml()
    hostile = re.sub(
        r'Location="[^"]*/sso/post"', "Location=\"javascript:document.title='ran:'+document.domain\"", metadata
    )
    assert hostile != metadata
    with pytest.raises(ClientError) as refused:
        idp.create_identity_provider(
            UserPoolId=pool_id, ProviderName="Hostile", ProviderType="SAML",
            ProviderDetails={"MetadataFile": hostile}, AttributeMapping={"email": "email"},
        )  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    idp.create_identity_provider(
        UserPoolId=pool_id, ProviderName="PostOnly", ProviderType="SAML",
        ProviderDetails={"MetadataFile": metadata}, AttributeMapping={"email": "email"},
    )  # fmt: skip
    client_id = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="app",
        GenerateSecret=True,
        AllowedOAuthFlowsUserPoolClient=True,
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid"],
        CallbackURLs=[CALLBACK],
        SupportedIdentityProviders=["PostOnly"],
    )["UserPoolClient"]["ClientId"]
    url = f"{gatehouse.url}/oauth2/authorize?" + urlencode(
        {"client_id": client_id, "response_type": "code", "redirect_uri": CALLBACK, "identity_provider": "PostOnly"}
    )
    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 200 and 'method="post" action="http://127.0.0.1:' in answer.text
    headers = answer.headers
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    policy = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
    assert "frame-ancestors 'none'" in policy and "form-action *" in policy and "default-src 'none'" in policy


# --- Sessions stay in their pool ---------------------------------------------------------------------------------


def test_one_pools_session_cookie_signs_nobody_in_to_another(
    gatehouse: GatehouseServer, idp: Any, pool: OAuthPool
) -> None:
    """The same username in two pools is two people: pool A's session token, sent under pool B's cookie name
    (on the shared host or under B's path), does not sign anyone in to B."""
    other = make_pool(idp, gatehouse.url, "hosted-hostile-b")
    make_user(idp, other.pool_id, "alice")
    browser = Browser(gatehouse.url)
    assert browser.sign_in(browser.authorize_url(pool.secret_id), "alice").status_code == 303
    token = browser.http.cookies.get(f"gatehouse_sso_{pool.pool_id}")
    assert token
    for prefix in ("", f"/{other.pool_id}"):
        answer = requests.get(
            gatehouse.url + Browser(gatehouse.url).authorize_url(other.secret_id, prefix=prefix, prompt="none"),
            cookies={f"gatehouse_sso_{other.pool_id}": token},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302
        assert query_of(answer.headers["Location"])["error"] == "login_required"


@pytest.mark.parametrize("path", ["/login", "/signup", "/confirm", "/forgotPassword", "/confirmForgotPassword"])
def test_a_form_past_the_body_limit_gets_a_page(gatehouse: GatehouseServer, pool: OAuthPool, path: str) -> None:
    """A hosted form body over the server's limit (1 MiB by default), or with more fields than aiohttp reads, is
    refused with the error page and its headers, like every other refused form, not a bare text answer."""
    browser, form = _page(gatehouse, pool, path)
    answer = browser.submit(form, {"username": "u" * 1_100_000})
    assert answer.status_code == 413 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert _ALERT.findall(answer.text) == [
        "That form is too large to send. Go back, shorten what you entered, and try again."
    ]
    assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Cache-Control"] == "no-store"
    # So is one of more fields than aiohttp reads (1000), however small.
    many = browser.submit(form, {f"f{i}": "" for i in range(1500)})
    assert many.status_code == 413 and len(_ALERT.findall(many.text)) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"challenge": "SELECT_MFA_TYPE", "session": "", "choice": "SMS_MFA"},
        {"challenge": "MFA_SETUP", "session": "", "setup": "choose", "choice": "SOFTWARE_TOKEN_MFA"},
    ],
    ids=["select-mfa-type", "mfa-setup-choice"],
)
def test_a_deeply_nested_choices_field_gets_a_page(
    gatehouse: GatehouseServer, pool: OAuthPool, fields: dict[str, str]
) -> None:
    """The challenge form's hidden "choices" (a JSON list the page sent) comes back as the browser's text:
    thousands of nested brackets must be an error page, not a RecursionError and a 500."""
    browser, login = _page(gatehouse, pool, "/login")
    action = Browser.form_action(login).replace("/login?", "/login/challenge?")
    data = {"_csrf": Browser.form_fields(login)["_csrf"], "username": "alice", "choices": "[" * 5000, **fields}
    answer = browser.post(action, data)
    assert answer.status_code == 400 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    assert len(_ALERT.findall(answer.text)) == 1
