// WebAuthn ceremonies in the browser: the server's options (JSON) in, the authenticator's answer (JSON)
// out. The challenge is made and kept by the server; this only carries it to the authenticator.
(function () {
  "use strict";
  const { t } = window.SottoI18n;
  function supported() {
    return !!(window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON);
  }
  async function create(options) {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = await navigator.credentials.create({ publicKey });
    return credential.toJSON();
  }
  async function get(options) {
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const credential = await navigator.credentials.get({ publicKey });
    return credential.toJSON();
  }
  // What a person should read when the browser or the key said no (cancelled, timed out, unknown key).
  function explain(err) {
    if (err && err.name === "NotAllowedError") return t("The passkey request was cancelled or timed out.");
    if (err && err.name === "InvalidStateError") return t("This passkey is already registered.");
    return (err && err.message) || t("The passkey did not answer.");
  }
  window.SottoPasskeys = { supported, create, get, explain };
})();
