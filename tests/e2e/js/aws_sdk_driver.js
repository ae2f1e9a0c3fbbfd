// The AWS SDK for JavaScript v3 as a Node back end uses it, unmodified, driven one call at a time over stdin/stdout.
//
//   NODE_PATH=<node_modules> node aws_sdk_driver.js
//
// Each stdin line is one request; each answer is one stdout line "@@" + JSON: {"ok": true, "result": ...} or
// {"ok": false, "name", "message", "fault", "status", "requestId", "classes"}: "status" and "requestId" are the
// error's $metadata.httpStatusCode and requestId; "classes" names, as "<service>.<class>", every exception class
// of the client packages the error is an instance of (the test checks `instanceof NotAuthorizedException`, not
// just a name). A result's output comes with its $metadata's "$status" and "$requestId". Dates in results are sent as {"$date": <ISO string>} so the test can tell a JS Date from a number or string.
//
// Requests ("service": "idp" for @aws-sdk/client-cognito-identity-provider, "sts" for @aws-sdk/client-sts,
// "nestedSts" for the STS client of @aws-sdk/nested-clients that the credential providers use):
//   {"op": "send", "service", "endpoint", "credentials", "command", "input"}: one command. "credentials":
//     {accessKeyId, secretAccessKey[, sessionToken]} for the SDK's own SigV4 signer, or null for a client with
//     none at all (a provider that throws if asked), as an app in a browser has: the SDK must send the call
//     unsigned; or "noSignature" for a client whose signer leaves every request unsigned.
//     "options" (optional) adds to the client's configuration (maxAttempts, systemClockOffset); the result
//     also has "$clockOffset", the client's systemClockOffset after the call.
//   {"op": "paginate", "service", "endpoint", "credentials", "paginator", "input", "pageSize"}: every page the
//     SDK's paginator of that name yields.
//   {"op": "webIdentity", "provider": "fromTokenFile" | "fromWebToken", "init", "env", "endpoint"}: the
//     credential provider of @aws-sdk/credential-providers, called with "init" while "env" is set in
//     process.env; then GetCallerIdentity signed with the credentials it returned, at "endpoint".
//   {"op": "defaultChain", "env"}: an STSClient with no credentials and no endpoint option, so that the SDK's
//     own default chain and endpoint resolution (from "env") pick both; GetCallerIdentity through it.
"use strict";
const readline = require("node:readline");

const packages = {
  idp: {
    module: require("@aws-sdk/client-cognito-identity-provider"),
    client: "CognitoIdentityProviderClient",
  },
  sts: { module: require("@aws-sdk/client-sts"), client: "STSClient" },
  // The STS client the credential providers build for themselves, with its own exception classes.
  nestedSts: { module: require("@aws-sdk/nested-clients/sts"), client: "STSClient" },
};
const providers = require("@aws-sdk/credential-providers");

const REGION = "us-east-1";

function reply(value) {
  process.stdout.write("@@" + JSON.stringify(value, dates) + "\n");
}

// JSON.stringify has already called Date#toJSON on `value`; `this[key]` is still the Date itself.
function dates(key, value) {
  const raw = this[key];
  return raw instanceof Date ? { $date: raw.toISOString() } : value;
}

function unsigned() {
  throw new Error("this client has no credentials: the SDK asked for some to sign the call");
}

function client(service, endpoint, credentials, options) {
  const { module, client: name } = packages[service];
  const config = { region: REGION, endpoint, credentials: credentials ?? unsigned, maxAttempts: 1, ...options };
  if (credentials === "noSignature") {
    // A signer that leaves every request as it is: even an admin operation goes out unsigned.
    config.credentials = { accessKeyId: "unused", secretAccessKey: "unused" };
    config.signer = { sign: async (request) => request };
  }
  return new module[name](config);
}

// What a back end would want from an answer: the output without its $metadata, and of that the HTTP status,
// the request id and how many attempts the SDK made.
function output(answer) {
  const { $metadata, ...rest } = answer;
  const { httpStatusCode, requestId, attempts } = $metadata;
  return { ...rest, $status: httpStatusCode, $requestId: requestId ?? null, $attempts: attempts };
}

function errorClasses(error) {
  const classes = [];
  for (const [service, { module }] of Object.entries(packages)) {
    for (const [name, value] of Object.entries(module)) {
      if (typeof value === "function" && value.prototype instanceof Error && error instanceof value) {
        classes.push(`${service}.${name}`);
      }
    }
  }
  return classes;
}

async function withEnv(env, body) {
  const saved = {};
  for (const [name, value] of Object.entries(env ?? {})) {
    saved[name] = process.env[name];
    if (value === null) delete process.env[name];
    else process.env[name] = value;
  }
  try {
    return await body();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function callerIdentity(endpoint, credentials) {
  const sts = packages.sts.module;
  const answer = await client("sts", endpoint, credentials).send(new sts.GetCallerIdentityCommand({}));
  return output(answer);
}

async function run(request) {
  const { op, service, endpoint, credentials } = request;
  if (op === "send") {
    const Command = packages[service].module[`${request.command}Command`];
    if (typeof Command !== "function") throw new Error(`no such command: ${request.command}`);
    const sdk = client(service, endpoint, credentials, request.options);
    const answer = output(await sdk.send(new Command(request.input)));
    return { ...answer, $clockOffset: sdk.config.systemClockOffset };
  }
  if (op === "paginate") {
    const paginate = packages[service].module[request.paginator];
    if (typeof paginate !== "function") throw new Error(`no such paginator: ${request.paginator}`);
    const config = { client: client(service, endpoint, credentials), pageSize: request.pageSize };
    const pages = [];
    for await (const page of paginate(config, request.input)) pages.push(output(page));
    return pages;
  }
  if (op === "webIdentity") {
    return await withEnv(request.env, async () => {
      const provide = providers[request.provider](request.init);
      const got = await provide();
      return { credentials: got, caller: await callerIdentity(endpoint, got) };
    });
  }
  if (op === "defaultChain") {
    return await withEnv(request.env, async () => {
      const sts = new packages.sts.module.STSClient({ maxAttempts: 1 });
      const answer = await sts.send(new packages.sts.module.GetCallerIdentityCommand({}));
      const got = await sts.config.credentials();
      return { credentials: got, caller: output(answer) };
    });
  }
  throw new Error(`no such op: ${op}`);
}

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on("line", (line) => {
  queue = queue.then(async () => {
    try {
      reply({ ok: true, result: await run(JSON.parse(line)) });
    } catch (e) {
      reply({
        ok: false,
        name: e.name,
        message: e.message,
        fault: e.$fault ?? null,
        status: e.$metadata?.httpStatusCode ?? null,
        requestId: e.$metadata?.requestId ?? null,
        classes: errorClasses(e),
      });
    }
  });
});
lines.on("close", () => queue.then(() => process.exit(0)));
