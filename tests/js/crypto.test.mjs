// The browser module under Node's Web Crypto: known-answer vectors made by the Python oracle must open,
// and every envelope must be reproduced byte for byte from the same fixed inputs.
// Run: node --test tests/js/   (tests/web/test_static_js.py runs the directory)

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as sc from "../../appliance/web/static/sotto-crypto-0.1.js";

const V = JSON.parse(readFileSync(new URL("../data/private_vectors.json", import.meta.url), "utf8"));
const raw = (name) => sc.b64uDecode(V[name]);
const P256 = { name: "ECDH", namedCurve: "P-256" };

async function userPrivateKey() {
  return crypto.subtle.importKey("pkcs8", raw("user_private_key"), P256, false, ["deriveBits"]);
}

async function keyFor(name) {
  if (name === "kek") return (await sc.deriveKeys(V.password, V.kdf)).kek;
  if (name === "new_kek") return (await sc.deriveKeys(V.new_password, V.new_kdf)).kek;
  return raw(name);
}

async function openVector(v) {
  if (v.typ === "tk-sealed") {
    return sc.unsealWithPrivateKey(await userPrivateKey(), raw("user_public_key"), v.envelope, v.ids.uid, v.ids.tid);
  }
  return (await sc.openEnvelope(await keyFor(v.key), v.envelope, v.typ, v.ids)).plaintext;
}

async function reproduce(v) {
  const iv = sc.b64uDecode(v.iv);
  const pt = sc.b64uDecode(v.pt);
  if (v.typ === "tk-sealed") {
    return sc.sealToPublicKey(raw("user_public_key"), pt, v.ids.uid, v.ids.tid, { iv, ephemeralPkcs8: raw("ephemeral_private_key") });
  }
  if (v.typ === "transcript" || v.typ === "share") return sc._sealDocumentBytes(await keyFor(v.key), v.typ, v.ids, pt, v.gzip, { iv });
  if (v.typ === "dk-recovery") return sc.wrapDataKeyForRecovery(sc.parseRecoveryKey(V.recovery_key), pt, v.ids.uid, { iv });
  return sc._seal(await keyFor(v.key), v.typ, v.ids, pt, { iv });
}

test("the passphrase derives the oracle's KEK (it opens the vector data key), and nothing else", async () => {
  const derived = await sc.deriveKeys(V.password, V.kdf);
  assert.deepEqual(Object.keys(derived), ["kek"]);
  const dk = V.envelopes.find((v) => v.name === "dk");
  assert.equal(sc.b64uEncode(await sc.unwrapDataKeyRaw(derived.kek, dk.envelope, dk.ids.uid)), V.dk);
  const next = V.envelopes.find((v) => v.name === "dk-new-password");
  assert.equal(sc.b64uEncode(await sc.unwrapDataKeyRaw((await sc.deriveKeys(V.new_password, V.new_kdf)).kek, next.envelope, next.ids.uid)), V.dk);
});

for (const v of V.envelopes) {
  test(`vector ${v.name}: opens, and is reproduced byte for byte`, async () => {
    assert.equal(sc.b64uEncode(await openVector(v)), v.pt);
    assert.equal(await reproduce(v), v.envelope);
  });
}

test("the documents decode to the same JSON, compressed or not", async () => {
  for (const name of ["transcript", "transcript-gzip"]) {
    const v = V.envelopes.find((e) => e.name === name);
    assert.deepEqual(await sc.openTranscript(raw("tk"), v.envelope, V.uid, V.tid), V.document);
  }
  const share = V.envelopes.find((e) => e.name === "share");
  assert.deepEqual(await sc.openShare(raw("sk_share"), share.envelope, V.sid), V.document);
});

test("the whole record unlocks with the password and with the recovery key", async () => {
  const env = Object.fromEntries(V.envelopes.map((e) => [e.name, e.envelope]));
  const record = { kdf: V.kdf, wrapped_dk: env.dk, recovery_dk: env["dk-recovery"], public_key: V.user_public_key,
                   wrapped_private_key: env.sk };
  for (const keys of [await sc.unlock(V.password, record, V.uid), await sc.unlockWithRecoveryKey(V.recovery_key, record, V.uid)]) {
    const tk = await sc.transcriptKey(keys, { kind: "tk-sealed", key_envelope: env["tk-sealed"] }, V.uid, V.tid);
    assert.equal(sc.b64uEncode(tk), V.tk);
    const rewrapped = await sc.rewrapSealedKey(keys, env["tk-sealed"], V.uid, V.tid);
    const again = await sc.transcriptKey(keys, { kind: "tk", key_envelope: rewrapped }, V.uid, V.tid);
    assert.equal(sc.b64uEncode(again), V.tk);
  }
  await assert.rejects(sc.unlock(V.new_password, record, V.uid), { code: "decrypt" });
  const swapped = { ...record, public_key: sc.b64uEncode((await sc.newKeyPair()).publicKey) };
  await assert.rejects(sc.unlock(V.password, swapped, V.uid), { code: "ids" });
});

for (const r of V.refusals) {
  test(`refused (${r.code}): ${r.why}`, async () => {
    await assert.rejects(sc.openEnvelope(await keyFor(r.key), r.envelope, r.typ, r.ids), { code: r.code });
  });
}

for (const r of V.kdf_refusals) {
  test(`weak key derivation refused: ${r.why}`, async () => {
    await assert.rejects(sc.deriveKeys(V.password, r.params), { code: r.code });
  });
}

test("a round trip through fresh keys, and a password change leaves other envelopes alone", async () => {
  const uid = "u1";
  const tid = "t1";
  const { record, recoveryKey, keys } = await sc.enrol("first password", uid);
  assert.equal(record.kdf.iterations, sc.MIN_ITERATIONS);
  assert.equal(sc.b64uDecode(record.kdf.salt).length, 16);
  const tk = sc.newTranscriptKey();
  const sealed = await sc.sealToPublicKey(keys.publicKey, tk, uid, tid);
  const body = await sc.sealTranscript(tk, { text: "hello ünïcode", n: 1.5 }, uid, tid);
  assert.equal("auth_key" in record, false);
  const changed = await sc.changePassphrase("first password", "second password", record, uid);
  assert.deepEqual(Object.keys(changed).sort(), ["kdf", "wrapped_dk"]);
  assert.notEqual(changed.kdf.salt, record.kdf.salt);
  const next = { ...record, ...changed };
  await assert.rejects(sc.unlock("first password", next, uid), { code: "decrypt" });
  for (const k of [await sc.unlock("second password", next, uid), await sc.unlockWithRecoveryKey(recoveryKey, next, uid)]) {
    const opened = await sc.transcriptKey(k, { kind: "tk-sealed", key_envelope: sealed }, uid, tid);
    assert.deepEqual(await sc.openTranscript(opened, body, uid, tid), { text: "hello ünïcode", n: 1.5 });
  }
});

test("rekey moves every transcript key to new keys, and the old keys open none of the new envelopes", async () => {
  const uid = "u1";
  const old = await sc.enrol("the old sign-in password", uid);
  const tkSealed = sc.newTranscriptKey(), tkWrapped = sc.newTranscriptKey(), tkShared = sc.newTranscriptKey();
  const inventory = {
    owned: [
      { transcript_id: "t-sealed", kind: "tk-sealed", key_envelope: await sc.sealToPublicKey(old.keys.publicKey, tkSealed, uid, "t-sealed") },
      { transcript_id: "t-wrapped", kind: "tk", key_envelope: await sc.wrapTranscriptKey(old.keys.dk, tkWrapped, uid, "t-wrapped") },
    ],
    received: [{ transcript_id: "t-shared", key_envelope: await sc.sealToPublicKey(old.keys.publicKey, tkShared, uid, "t-shared") }],
  };
  const moved = await sc.rekey(old.keys, "a passphrase of its own", inventory, uid);
  assert.notEqual(moved.record.public_key, old.record.public_key);
  assert.notEqual(moved.recoveryKey, old.recoveryKey);
  const fresh = await sc.unlock("a passphrase of its own", moved.record, uid);
  assert.deepEqual(await sc.transcriptKey(fresh, { kind: "tk", key_envelope: moved.owned["t-sealed"] }, uid, "t-sealed"), tkSealed);
  assert.deepEqual(await sc.transcriptKey(fresh, { kind: "tk", key_envelope: moved.owned["t-wrapped"] }, uid, "t-wrapped"), tkWrapped);
  assert.deepEqual(await sc.transcriptKey(fresh, { kind: "tk-sealed", key_envelope: moved.received["t-shared"] }, uid, "t-shared"), tkShared);
  await assert.rejects(sc.transcriptKey(old.keys, { kind: "tk", key_envelope: moved.owned["t-wrapped"] }, uid, "t-wrapped"), { code: "decrypt" });
  await assert.rejects(sc.transcriptKey(old.keys, { kind: "tk-sealed", key_envelope: moved.received["t-shared"] }, uid, "t-shared"), { code: "decrypt" });
  await assert.rejects(sc.unlock("the old sign-in password", moved.record, uid), { code: "decrypt" });
  await assert.rejects(sc.unlockWithRecoveryKey(old.recoveryKey, moved.record, uid), { code: "decrypt" });
});

test("recovery keys format and parse, and typos are refused", () => {
  const { raw: key, text } = sc.newRecoveryKey();
  assert.match(text, /^([A-Z2-7]{4}-){12}[A-Z2-7]{4}$/);
  assert.deepEqual(sc.parseRecoveryKey(text.toLowerCase().replace(/-/g, " ")), key);
  assert.throws(() => sc.parseRecoveryKey(text.slice(1)), { code: "malformed" });
  assert.equal(sc.formatRecoveryKey(sc.parseRecoveryKey(V.recovery_key)), V.recovery_key);
});

test("share links carry the key in the fragment only", () => {
  const sk = sc.newShareKey();
  assert.deepEqual(sc.shareKeyFromFragment(sc.shareFragment(sk)), sk);
  assert.throws(() => sc.shareKeyFromFragment("#k=short"), { code: "malformed" });
});
