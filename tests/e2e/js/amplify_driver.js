// AWS Amplify JS v6 (aws-amplify/auth), unmodified, driven one call at a time over stdin/stdout.
//
//   NODE_PATH=<node_modules> node amplify_driver.js
//
// Each stdin line is {"op": <name>, "input": <object>}; each answer is one stdout line "@@" + JSON:
// {"ok": true, "result": ...} or {"ok": false, "name": <error name>, "message": <error message>}.
// "configure" passes its input to Amplify.configure ("configureFromOutputs": an amplify_outputs.json and the
// endpoint to add to it); "storedRefreshToken" reads Amplify's stored refresh token;
// every other op is the aws-amplify/auth function of that name, called with its input. One process keeps Amplify's in-memory state (tokens, a sign-in in progress)
// across calls, as a browser tab would. Node 20 has no window.localStorage; Amplify falls back to its own
// in-memory storage by itself. One browser global is needed: Amplify names a new device (ConfirmDevice's
// DeviceName) from navigator.userAgent, and Node 20 has no navigator (Node 21+ has one, with this userAgent);
// without it Amplify silently skips ConfirmDevice and never remembers a device.
"use strict";
const readline = require("node:readline");

if (typeof globalThis.navigator === "undefined") {
  globalThis.navigator = { userAgent: `Node.js/${process.versions.node.split(".")[0]}` };
}
const { Amplify } = require("aws-amplify");
const auth = require("aws-amplify/auth");
const { defaultStorage, parseAmplifyConfig } = require("aws-amplify/utils");

function reply(value) {
  process.stdout.write("@@" + JSON.stringify(value) + "\n");
}

// fetchAuthSession's tokens are JWT objects ({payload, toString}); send the compact form and the payload.
function session(s) {
  const jwt = (t) => (t ? { token: t.toString(), payload: t.payload } : null);
  return {
    tokens: s.tokens ? { idToken: jwt(s.tokens.idToken), accessToken: jwt(s.tokens.accessToken) } : null,
    identityId: s.identityId ?? null,
    userSub: s.userSub ?? null,
    credentials: s.credentials
      ? {
          accessKeyId: s.credentials.accessKeyId,
          secretAccessKey: s.credentials.secretAccessKey,
          sessionToken: s.credentials.sessionToken,
          expiration: s.credentials.expiration ? s.credentials.expiration.toISOString() : null,
        }
      : null,
  };
}

async function run(op, input) {
  if (op === "configure") {
    Amplify.configure(input);
    return null;
  }
  if (op === "configureFromOutputs") {
    // An amplify_outputs.json (Amplify Gen 2) has no endpoint fields: parse it, then add them.
    const config = parseAmplifyConfig(input.outputs);
    config.Auth.Cognito.userPoolEndpoint = input.endpoint;
    config.Auth.Cognito.identityPoolEndpoint = input.endpoint;
    Amplify.configure(config);
    return null;
  }
  if (op === "storedRefreshToken") {
    // What Amplify keeps under Cognito's key names (never returned by fetchAuthSession): the test checks
    // at Gatehouse that sign-out revoked it.
    const prefix = `CognitoIdentityServiceProvider.${input.clientId}`;
    const username = await defaultStorage.getItem(`${prefix}.LastAuthUser`);
    return await defaultStorage.getItem(`${prefix}.${username}.refreshToken`);
  }
  if (typeof auth[op] !== "function") throw new Error(`no such aws-amplify/auth function: ${op}`);
  const result = await auth[op](input);
  if (op === "fetchAuthSession") return session(result);
  return result ?? null;
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    const { op, input } = JSON.parse(line);
    try {
      reply({ ok: true, result: await run(op, input) });
    } catch (e) {
      reply({ ok: false, name: e.name, message: e.message });
    }
  });
});
// The test is done with this driver: answer what is pending, then exit, since Amplify's own timers (token
// refresh, the auto sign-in listener) would keep node running.
lines.on("close", () => queue.then(() => process.exit(0)));
