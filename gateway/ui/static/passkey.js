// The hosted passkey page: run the WebAuthn ceremony with the options of the WEB_AUTHN challenge
// (CREDENTIAL_REQUEST_OPTIONS, PublicKeyCredentialRequestOptions as JSON with base64url binaries) and post
// the assertion back as JSON (the CREDENTIAL answer), as WebAuthn Level 3's toJSON() encodes it.
// Served from Gatehouse's own origin: the page's CSP is script-src 'self', with no inline script.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  var status = document.getElementById("passkey-status");
  var start = document.getElementById("passkey-start");
  if (!form || !start) return;

  function fromB64url(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json, { challenge: fromB64url(json.challenge) });
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: fromB64url(c.id) });
    });
    return options;
  }

  function credentialJson(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    var r = credential.response;
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : undefined,
      },
    };
  }

  function say(text) {
    if (status) status.textContent = text;
  }

  function signIn() {
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser cannot use passkeys. Go back and sign in with your password.");
      return;
    }
    start.disabled = true;
    say("Waiting for your passkey…");
    var publicKey;
    try {
      publicKey = requestOptions(JSON.parse(form.getAttribute("data-options")));
    } catch (e) {
      say("The sign-in request could not be read. Go back and try again.");
      return;
    }
    navigator.credentials.get({ publicKey: publicKey }).then(
      function (credential) {
        document.getElementById("passkey-credential").value = JSON.stringify(credentialJson(credential));
        say("Signing you in…");
        form.submit();
      },
      function () {
        start.disabled = false;
        say("Your passkey was not used. Select the button to try again.");
      }
    );
  }

  start.addEventListener("click", signIn);
  signIn();
})();
