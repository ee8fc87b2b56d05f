// The console's WebAuthn ceremonies: options from the server, the key in the browser, the
// answer back to the server. Uses the browser's own JSON helpers for WebAuthn (Level 3).
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var status = document.getElementById("webauthn-status");

  function show(message) {
    if (status) { status.textContent = message; status.hidden = false; }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {})
    });
  }

  function options(url) {
    return post(url).then(function (response) {
      return response.json().then(function (json) {
        if (!response.ok) { throw new Error(json.error || response.statusText); }
        return json;
      });
    });
  }

  function answer(url, body, failed) {
    return post(url, body).then(function (response) {
      return response.json().then(function (json) {
        if (response.ok && json.redirect) { window.location.assign(json.redirect); }
        else { show(failed + (json.error ? " (" + json.error + ")" : "")); }
      });
    });
  }

  function assertion(optionsUrl) {
    return options(optionsUrl).then(function (json) {
      var publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(json);
      return navigator.credentials.get({ publicKey: publicKey });
    }).then(function (credential) { return credential.toJSON(); });
  }

  var signIn = document.getElementById("sign-in");
  if (signIn) {
    signIn.addEventListener("click", function () {
      assertion("/officer/sign-in/options").then(function (credential) {
        return answer("/officer/sign-in", { credential: credential }, signIn.dataset.failed);
      }).catch(function (error) { show(signIn.dataset.failed + " (" + error.message + ")"); });
    });
  }

  // `confirm` (adding a key): a promise of extra fields, asked before the new key is made.
  function registration(button, base, confirm) {
    button.addEventListener("click", function () {
      var label = document.getElementById("key-label");
      var extra = {};
      (confirm ? confirm() : Promise.resolve({})).then(function (fields) {
        extra = fields;
        return options(base + "/options");
      }).then(function (json) {
        var publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(json);
        return navigator.credentials.create({ publicKey: publicKey });
      }).then(function (credential) {
        var body = { credential: credential.toJSON(), label: label ? label.value : "" };
        return answer(base, Object.assign(body, extra), button.dataset.failed);
      }).catch(function (error) { show(button.dataset.failed + " (" + error.message + ")"); });
    });
  }

  var register = document.getElementById("register");
  if (register) { registration(register, "/officer/register/" + register.dataset.token); }
  var addKey = document.getElementById("add-key");
  if (addKey) {
    // A key already registered confirms the new one first (step-up), as for every change.
    registration(addKey, "/officer/keys", function () {
      return assertion("/officer/step-up/options").then(function (credential) {
        return { assertion: credential };
      });
    });
  }

  // Sensitive actions: the form is sent only with a fresh assertion of the officer's key.
  document.querySelectorAll("form[data-step-up]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.confirmed === "1") { return; }
      event.preventDefault();
      assertion("/officer/step-up/options").then(function (credential) {
        form.elements.assertion.value = JSON.stringify(credential);
        form.dataset.confirmed = "1";
        form.requestSubmit();
      }).catch(function (error) { show(form.dataset.failed + " (" + error.message + ")"); });
    });
  });
})();
