// An independent relying party: node's openid-client (v6) against a Gatehouse user pool.
//
//   node openid_client_rp.mjs <node_modules dir> start  '<json>'  -> {url, verifier, nonce, state}
//   node openid_client_rp.mjs <node_modules dir> finish '<json>'  -> what each step returned
//
// "start" discovers the issuer and builds the authorization URL (PKCE S256, nonce, state); the test then
// signs in on the hosted /login page over HTTP and hands back the callback URL. "finish" discovers again and
// runs authorizationCodeGrant (openid-client checks state, iss (RFC 9207), PKCE, and the ID token's
// signature, iss, aud, exp, iat, nonce), fetchUserInfo (sub must match), refreshTokenGrant and
// tokenRevocation, then shows that the revoked refresh token is refused.
import { pathToFileURL } from "node:url";
import { createHash } from "node:crypto";
import path from "node:path";

const [modulesDir, mode, raw] = process.argv.slice(2);
const client = await import(pathToFileURL(path.join(modulesDir, "openid-client", "build", "index.js")).href);
const p = JSON.parse(raw);

async function configure() {
  // Discovery against the pool's issuer; plain http is only allowed because the test server is local.
  const auth = p.clientSecret ? client.ClientSecretBasic(p.clientSecret) : client.None();
  return client.discovery(new URL(p.issuer), p.clientId, p.clientSecret, auth, {
    execute: [client.allowInsecureRequests],
  });
}

function failure(e) {
  const cause = e.cause && typeof e.cause === "object" ? { claim: e.cause.claim, parameter: e.cause.parameter } : {};
  return { name: e.name, code: e.code, error: e.error, message: e.message, status: e.status, ...cause };
}

// openid-client does not check at_hash in the code flow (it is OPTIONAL there, OIDC Core 3.1.3.6), so the
// relying party checks it itself: the left half of SHA-256 over the access token, base64url.
function atHash(accessToken) {
  const digest = createHash("sha256").update(accessToken, "ascii").digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

async function main() {
  const config = await configure();
  if (mode === "start") {
    const verifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: p.redirectUri,
      scope: p.scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      nonce,
      state,
    });
    const server = config.serverMetadata();
    return { url: url.href, verifier, nonce, state, metadata: server };
  }
  const out = {};
  let tokens;
  try {
    tokens = await client.authorizationCodeGrant(config, new URL(p.callback), {
      pkceCodeVerifier: p.verifier,
      expectedNonce: p.nonce,
      expectedState: p.state,
      idTokenExpected: true,
    });
  } catch (e) {
    return { ok: false, step: "authorizationCodeGrant", failure: failure(e) };
  }
  const claims = tokens.claims();
  out.claims = claims;
  out.atHashMatches = claims.at_hash === atHash(tokens.access_token);
  out.tokenType = tokens.token_type;
  out.expiresIn = tokens.expiresIn();
  out.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  try {
    await client.fetchUserInfo(config, tokens.access_token, "not-" + claims.sub);
    out.wrongSubject = "accepted";
  } catch (e) {
    out.wrongSubject = failure(e);
  }
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  const refreshedClaims = refreshed.claims();
  out.refreshed = {
    sub: refreshedClaims && refreshedClaims.sub,
    newAccessToken: refreshed.access_token !== tokens.access_token,
    rotated: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
  };
  const current = refreshed.refresh_token || tokens.refresh_token;
  await client.tokenRevocation(config, current, { token_type_hint: "refresh_token" });
  try {
    await client.refreshTokenGrant(config, current);
    out.afterRevocation = "accepted";
  } catch (e) {
    out.afterRevocation = failure(e);
  }
  // The same code a second time: a one-time code (RFC 6749 4.1.2) is refused.
  try {
    await client.authorizationCodeGrant(config, new URL(p.callback), {
      pkceCodeVerifier: p.verifier,
      expectedNonce: p.nonce,
      expectedState: p.state,
    });
    out.replay = "accepted";
  } catch (e) {
    out.replay = failure(e);
  }
  out.ok = true;
  return out;
}

try {
  console.log(JSON.stringify(await main()));
} catch (e) {
  console.log(JSON.stringify({ ok: false, step: "uncaught", failure: failure(e), stack: String(e.stack) }));
}
