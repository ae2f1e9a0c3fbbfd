"""What the examples and documents tell users to run, run as they say it against ``gatehouse serve`` on the
embedded default (SQLite, keys and the outbox under the data dir): examples/boto3_quickstart.py and
examples/srp_sign_in.py with ``GATEHOUSE_URL=http://localhost:<port>`` as their docstrings write it, the
default issuer the examples' docs name, ``gatehouse config check`` on every config file shipped and on the
config snippets of docs/federation.md (its PreSignUp hook run as written), the packages the examples import
(the ``examples`` extra), and the metrics the Prometheus example and its Grafana dashboard read."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.config import Config
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import ADMIN_KEY_ID, ADMIN_SECRET, GatehouseServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatehouseServer]:
    """``gatehouse serve`` with no config file: codes go to the data dir's outbox, as the quickstart expects."""
    server = GatehouseServer(tmp_path_factory.mktemp("embedded") / "data")
    server.start()
    yield server
    server.stop()


def localhost_url(server: GatehouseServer) -> str:
    """The address as the examples' docstrings write it (``localhost``, not the listen address 127.0.0.1)."""
    return f"http://localhost:{server.port}"


def run_example(
    server: GatehouseServer, name: str, *, key_id: str = ADMIN_KEY_ID, secret: str = ADMIN_SECRET
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEHOUSE_URL": localhost_url(server), "GATEHOUSE_DATA_DIR": str(server.data_dir)}
    env |= {"GATEHOUSE_ADMIN_ACCESS_KEY_ID": key_id, "GATEHOUSE_ADMIN_SECRET_ACCESS_KEY": secret}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )


def test_quickstart_signs_up_confirms_and_verifies_the_id_token(embedded: GatehouseServer) -> None:
    result = run_example(embedded, "boto3_quickstart.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    match = re.search(r"^pool (\S+) client (\S+)$", out, re.MULTILINE)
    assert match, out
    pool_id = match.group(1)
    assert "ID token verified:" in out and "'email_verified': True" in out and "'token_use': 'id'" in out, out
    assert "GetUser: [{'Name': 'sub'" in out, out
    # The store agrees: the user the example signed up is confirmed, with its emailed code.
    users = embedded.client().list_users(UserPoolId=pool_id)["Users"]
    assert [u["UserStatus"] for u in users] == ["CONFIRMED"]
    outbox = (embedded.data_dir / "outbox.jsonl").read_text().splitlines()
    email = next(a["Value"] for a in users[0]["Attributes"] if a["Name"] == "email")
    assert any(json.loads(line).get("to") == email for line in outbox)


def test_triggers_example_runs_as_its_readme_says(tmp_path: Path) -> None:
    """examples/triggers: Gatehouse started with triggers.yaml and the handlers on PYTHONPATH, then demo.py."""
    server = GatehouseServer(
        tmp_path / "data",
        config=(EXAMPLES / "triggers" / "triggers.yaml").read_text(),
        extra_env={"PYTHONPATH": str(EXAMPLES / "triggers")},
    )
    server.start()
    try:
        result = run_example(server, "triggers/demo.py")
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sign-up refused: UserLambdaValidationException: PreSignUp failed with error Sign-up is open to" in out, out
    assert re.search(r"^sign-up of alice-\w+@example.com: confirmed=True$", out, re.MULTILINE), out
    assert "IdToken verified, claims from the function: {'tenant': 'acme'}" in out, out
    assert "AccessToken verified, claims from the function: {'tenant': 'acme', 'roles': ['reader']}" in out, out


def test_srp_example_verifies_through_localhost(embedded: GatehouseServer) -> None:
    result = run_example(embedded, "srp_sign_in.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SRP sign-in verified:" in result.stdout, result.stdout
    assert "wrong password refused: NotAuthorizedException" in result.stdout, result.stdout


def test_default_issuer_is_the_listen_address_as_the_example_docs_say(embedded: GatehouseServer) -> None:
    """examples/web_app and examples/credentials_service name ``http://127.0.0.1:9229/<pool id>`` as the issuer
    of a default ``gatehouse serve``: reaching it as localhost does not change the issuer."""
    pool_id = embedded.client().create_user_pool(PoolName="issuer-check")["UserPool"]["Id"]
    url = f"{localhost_url(embedded)}/{pool_id}/.well-known/openid-configuration"
    with urllib.request.urlopen(url, timeout=10) as response:
        discovery = json.load(response)
    assert discovery["issuer"] == f"http://127.0.0.1:{embedded.port}/{pool_id}"
    assert discovery["jwks_uri"] == f"http://127.0.0.1:{embedded.port}/{pool_id}/.well-known/jwks.json"


def test_quickstart_with_wrong_admin_credentials_fails_and_creates_nothing(embedded: GatehouseServer) -> None:
    admin = embedded.client()
    before = admin.list_user_pools(MaxResults=60)["UserPools"]
    result = run_example(embedded, "boto3_quickstart.py", key_id="AKIDNOTTHEADMIN", secret="wrong-secret")
    assert result.returncode != 0
    assert "ID token verified" not in result.stdout
    assert "botocore.exceptions.ClientError" in result.stderr and "CreateUserPool" in result.stderr, result.stderr
    assert "UnrecognizedClientException" in result.stderr or "AccessDenied" in result.stderr, result.stderr
    assert admin.list_user_pools(MaxResults=60)["UserPools"] == before


def test_unsigned_app_client_cannot_create_a_pool(embedded: GatehouseServer) -> None:
    """The quickstart's app-side client has made-up credentials ("unused"): an admin call with them is refused."""
    app = boto3.client(
        "cognito-idp",
        endpoint_url=localhost_url(embedded),
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(app.exceptions.ClientError) as refused:
        app.create_user_pool(PoolName="not-allowed")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    names = [p["Name"] for p in embedded.client().list_user_pools(MaxResults=60)["UserPools"]]
    assert "not-allowed" not in names


# --- gatehouse config check on every shipped config file ----------------------------------------------------


def apple_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode()


# Each file with the environment its header or README says it needs.
CONFIG_FILES = {
    "config/default.yaml": {},
    "config/gatehouse.example.yaml": {
        "WEB_CLIENT_SECRET": "web-client-secret-0123456789",
        "GATEHOUSE_ADMIN_SECRET": "admin-secret-0123456789",
        "SMTP_PASSWORD": "smtp-password",
        "SMS_WEBHOOK_TOKEN": "Bearer sms-token",
        "LAMBDA_SECRET_ACCESS_KEY": "lambda-secret",
        "KMS_SECRET_ACCESS_KEY": "kms-secret",
    },
    "examples/broker/broker.yaml": {"APPLE_PRIVATE_KEY": ""},  # filled with a fresh key below
    "examples/triggers/triggers.yaml": {"PYTHONPATH": "examples/triggers"},  # its handlers, as its header says
    "examples/front_door/gatehouse.yaml": {},
}


def config_check(path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GATEHOUSE_", "APPLE_", "SMTP_", "WEB_"))}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "config", "check", path],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_gatehouse_config_file_in_the_repository_is_checked_here() -> None:
    shipped = {str(p.relative_to(REPO)) for d in ("config", "examples") for p in (REPO / d).rglob("*.yaml")}
    assert shipped == set(CONFIG_FILES)


@pytest.mark.parametrize("path", sorted(CONFIG_FILES))
def test_config_check_passes_with_the_documented_environment(path: str) -> None:
    env = dict(CONFIG_FILES[path])
    if "APPLE_PRIVATE_KEY" in env:
        env["APPLE_PRIVATE_KEY"] = apple_key_pem()
    result = config_check(path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^{re.escape(path)}: OK \(\d+ pools?\)$", result.stdout, re.MULTILINE), result.stdout


def test_config_check_names_each_missing_variable_and_shows_no_secret() -> None:
    env = dict(CONFIG_FILES["config/gatehouse.example.yaml"])
    del env["WEB_CLIENT_SECRET"], env["SMTP_PASSWORD"]
    result = config_check("config/gatehouse.example.yaml", env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "expected environment variable WEB_CLIENT_SECRET to be set" in output, output
    assert "expected environment variable SMTP_PASSWORD to be set" in output, output
    assert "Traceback" not in output
    for secret in env.values():
        assert secret not in output


def test_broker_config_refuses_a_private_key_that_is_not_pem() -> None:
    result = config_check("examples/broker/broker.yaml", {"APPLE_PRIVATE_KEY": "not a key"})
    assert result.returncode != 0
    assert "identity_providers[1]" in result.stdout + result.stderr
    assert "not a key" not in result.stdout + result.stderr and "Traceback" not in result.stderr


# --- the config snippets of docs/federation.md ---------------------------------------------------------------

FEDERATION_DOC = REPO / "docs" / "federation.md"


def doc_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", path.read_text(), re.MULTILINE | re.DOTALL)


def write_doc_hook(directory: Path) -> Path:
    """The hook module docs/federation.md names (``mycompany.gatehouse_hooks:pre_sign_up``), holding the
    function the document shows, as a user would save it."""
    [hook] = [block for block in doc_blocks(FEDERATION_DOC, "python") if "def pre_sign_up" in block]
    package = directory / "mycompany"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "gatehouse_hooks.py").write_text(hook)
    return directory


def test_federation_doc_pool_snippets_are_accepted_as_written(tmp_path: Path) -> None:
    """Each whole-pool YAML snippet of docs/federation.md, put in a file after ``version: 1``, passes
    ``gatehouse config check`` (a pool's required keys included), its hook importable as the document says."""
    snippets = [block for block in doc_blocks(FEDERATION_DOC, "yaml") if block.startswith("pools:")]
    assert len(snippets) == 2, snippets
    hooks_dir = write_doc_hook(tmp_path / "hooks")
    for number, snippet in enumerate(snippets):
        path = tmp_path / f"snippet{number}.yaml"
        path.write_text("version: 1\n" + snippet)
        env = {"GOOGLE_CLIENT_SECRET": "google-secret", "PYTHONPATH": f"{REPO}{os.pathsep}{hooks_dir}"}
        result = config_check(str(path), env)
        assert result.returncode == 0, snippet + result.stdout + result.stderr
        assert f"{path}: OK (1 pools)" in result.stdout, result.stdout


def test_federation_doc_hook_refuses_and_verifies_as_documented(tmp_path: Path) -> None:
    """The documented PreSignUp hook, served from the documented config: SignUp of an address outside
    example.com is refused with the hook's message, and one inside gets a verified email."""
    [snippet] = [block for block in doc_blocks(FEDERATION_DOC, "yaml") if "pre_sign_up:" in block]
    hooks_dir = write_doc_hook(tmp_path / "hooks")
    server = GatehouseServer(
        tmp_path / "data", config="version: 1\n" + snippet, extra_env={"PYTHONPATH": f"{REPO}{os.pathsep}{hooks_dir}"}
    )
    server.start()
    try:
        admin = server.client()
        pool_id = "us-east-1_Example01"
        client_id = admin.create_user_pool_client(UserPoolId=pool_id, ClientName="app")["UserPoolClient"]["ClientId"]
        app = boto3.client(
            "cognito-idp",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
        )
        with pytest.raises(app.exceptions.UserLambdaValidationException) as refused:
            app.sign_up(
                ClientId=client_id,
                Username="bob",
                Password="Correct-Horse-9",
                UserAttributes=[{"Name": "email", "Value": "bob@elsewhere.example"}],
            )
        message = refused.value.response["Error"]["Message"]
        assert message == "PreSignUp failed with error Only example.com accounts may sign up.", message
        assert admin.list_users(UserPoolId=pool_id)["Users"] == []
        app.sign_up(
            ClientId=client_id,
            Username="amy",
            Password="Correct-Horse-9",
            UserAttributes=[{"Name": "email", "Value": "amy@example.com"}],
        )
        attributes = admin.admin_get_user(UserPoolId=pool_id, Username="amy")["UserAttributes"]
        assert {"Name": "email_verified", "Value": "true"} in attributes, attributes
    finally:
        server.stop()


# --- what the examples import ---------------------------------------------------------------------------------


def _requirement_names(requirements: list[str]) -> set[str]:
    return {_normalized(re.match(r"[A-Za-z0-9._-]+", requirement).group(0)) for requirement in requirements}  # type: ignore[union-attr]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_package_an_example_imports_comes_with_gatehouse_or_its_examples_extra() -> None:
    """README: ``pip install -e '.[examples]'`` gives the examples what they import. Each third-party module an
    example imports is from a distribution Gatehouse depends on, or one its ``examples`` extra names (boto3
    arrives with aws-encryption-sdk too, but an example should not lean on another package's needs)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    provided = _requirement_names(project["dependencies"] + project["optional-dependencies"]["examples"])
    distributions = importlib.metadata.packages_distributions()
    missing: dict[str, set[str]] = {}
    for source in EXAMPLES.rglob("*.py"):
        local = {path.stem for path in source.parent.glob("*.py")}
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in local or top == "__future__":
                    continue
                names = {_normalized(name) for name in distributions.get(top, [top])}
                if not names & provided:
                    missing.setdefault(str(source.relative_to(REPO)), set()).add(top)
    assert not missing, missing


# --- the Prometheus example ---------------------------------------------------------------------------------


def test_metrics_the_prometheus_example_reads_are_served(embedded: GatehouseServer) -> None:
    scrape = yaml.safe_load((EXAMPLES / "prometheus" / "prometheus.yml").read_text())
    job = scrape["scrape_configs"][0]
    with urllib.request.urlopen(f"{embedded.url}{job['metrics_path']}", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        exposition = response.read().decode()
    served = set(re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.MULTILINE))
    names = {name for name, _ in served}
    kinds = dict(served)

    dashboard = (EXAMPLES / "prometheus" / "grafana-dashboard.json").read_text()
    exprs = [panel_target["expr"] for panel_target in _targets(json.loads(dashboard))]
    assert exprs
    for expr in exprs:
        for metric in re.findall(r"\bgatehouse_[a-z_]+", expr):
            base = metric.removesuffix("_bucket")
            if base != metric:
                assert kinds.get(base) == "histogram", (metric, expr)
            else:
                assert metric.removesuffix("_total") in names or metric in names, (metric, sorted(names))
                assert kinds.get(metric.removesuffix("_total"), kinds.get(metric)) == "counter", metric

    readme = (EXAMPLES / "prometheus" / "README.md").read_text()
    listed = re.findall(r"`(gatehouse_[a-z_]+)(?:\{([a-z_,.]+)\})?`", readme)
    assert len(listed) >= 9
    for metric, labels in listed:
        assert metric.removesuffix("_total") in names or metric in names, metric
        for label in filter(None, labels.split(",")):
            if label != "...":
                # A label the README names is one the metric's help line set declares (seen once it has a child);
                # label names live in the registry, so check them against the sample lines when present.
                samples = re.findall(rf"^{metric}\{{([^}}]*)\}}", exposition, re.MULTILINE)
                for sample in samples:
                    assert f"{label}=" in sample, (metric, label, sample)


def _targets(node: object) -> Iterator[dict[str, str]]:
    if isinstance(node, dict):
        if isinstance(node.get("expr"), str):
            yield node
        for value in node.values():
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)
