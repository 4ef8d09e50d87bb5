// Sotto private transcripts: the key hierarchy and envelopes, in the browser, with Web Crypto only.
// An ES module without dependencies or a build step; the same file runs under `node --test`.
//
// passphrase --PBKDF2-SHA-256 (>= 600,000 iterations, 16-byte salt)--> master secret
//   master --HKDF "sotto/v1 kek"--> KEK (non-extractable; wraps the data key DK, never leaves the page)
// The passphrase is not the sign-in password and is never sent anywhere (the server refuses a record
// whose data key its sign-in password opens).
// recovery key (32 random bytes, shown once) --HKDF "sotto/v1 recovery-kek"--> recovery KEK (also wraps DK)
// DK wraps each transcript key TK ("tk") and the user's ECDH P-256 private key ("sk").
// The worker seals a new transcript's TK to the user's public key ("tk-sealed"); the browser re-wraps it
// under DK at the next unlock. A share snapshot is sealed under a fresh key SK kept in the URL fragment.
//
// Envelope: {"v":1,"alg":"A256GCM","hdr":b64url(header JSON),"iv":b64url(12 bytes),"ct":b64url(ct||tag)}.
// The header bytes are the GCM associated data, as stored: never re-serialised before verifying.
// The Python oracle (appliance/private/crypto.py) implements the same; tests/data/private_vectors.json
// holds both to it byte for byte.

export const VERSION = 1;
export const ALG = "A256GCM";
export const KDF_ALG = "PBKDF2-SHA-256";
export const MIN_ITERATIONS = 600000;
export const MAX_ITERATIONS = 10000000;
export const SALT_BYTES = 16;
export const TYPES = ["dk", "dk-recovery", "tk", "tk-sealed", "transcript", "share", "sk"];

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const POINT_BYTES = 65;
const ID_FIELDS = ["uid", "tid", "sid"];
const HEADER_ORDER = ["v", "typ", "uid", "tid", "sid", "cty", "z", "epk"];
const ENVELOPE_KEYS = ["v", "alg", "hdr", "iv", "ct"];
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const B64URL_PATTERN = /^[A-Za-z0-9_-]*$/;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ENC = new TextEncoder();
const INFO = {
  kek: ENC.encode("sotto/v1 kek"),
  recovery: ENC.encode("sotto/v1 recovery-kek"),
  seal: ENC.encode("sotto/v1 tk-sealed"),
};
const ZERO_SALT = new Uint8Array(32);
const GCM = (iv, hdr) => ({ name: "AES-GCM", iv, additionalData: hdr, tagLength: 128 });
const P256 = { name: "ECDH", namedCurve: "P-256" };

/** Every refusal. `code`: malformed, version, algorithm, type, ids, weak-kdf, decrypt, no-webcrypto. */
export class CryptoRefused extends Error {
  constructor(code, message) {
    super(message);
    this.name = "CryptoRefused";
    this.code = code;
  }
}

/** Web Crypto exists only in a secure context (HTTPS or localhost): the UI says so instead of failing. */
export function hasWebCrypto() {
  return Boolean(globalThis.crypto && globalThis.crypto.subtle);
}

function subtle() {
  if (!hasWebCrypto()) throw new CryptoRefused("no-webcrypto", "private transcripts need HTTPS");
  return globalThis.crypto.subtle;
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function bytes(buffer) {
  return buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

// ------------------------------------------------------------------------------------------ encodings

export function b64uEncode(data) {
  const view = bytes(data);
  let binary = "";
  for (let i = 0; i < view.length; i += 0x8000) binary += String.fromCharCode(...view.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict: URL-safe alphabet, no padding, canonical (no spare bits set). */
export function b64uDecode(text) {
  if (typeof text !== "string" || !B64URL_PATTERN.test(text) || text.length % 4 === 1) {
    throw new CryptoRefused("malformed", "not base64url");
  }
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  if (b64uEncode(out) !== text) throw new CryptoRefused("malformed", "not canonical base64url");
  return out;
}

/** 32 bytes as RFC 4648 base32 in groups of four (ABCD-EFGH-…), to write down by hand. */
export function formatRecoveryKey(raw) {
  let bits = "";
  for (const b of raw) bits += b.toString(2).padStart(8, "0");
  bits += "0".repeat((5 - (bits.length % 5)) % 5);
  let chars = "";
  for (let i = 0; i < bits.length; i += 5) chars += BASE32[parseInt(bits.slice(i, i + 5), 2)];
  return chars.match(/.{1,4}/g).join("-");
}

export function parseRecoveryKey(text) {
  const chars = String(text || "").replace(/[\s-]/g, "").toUpperCase();
  if (chars.length !== 52 || [...chars].some((c) => !BASE32.includes(c))) {
    throw new CryptoRefused("malformed", "a recovery key is 52 letters and digits");
  }
  let bits = "";
  for (const c of chars) bits += BASE32.indexOf(c).toString(2).padStart(5, "0");
  if (/1/.test(bits.slice(256))) throw new CryptoRefused("malformed", "not a recovery key");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

// ------------------------------------------------------------------------------------ password → keys

/** Fresh parameters for a new password: a new random salt every time. */
export function newKdfParams(iterations = MIN_ITERATIONS) {
  return { alg: KDF_ALG, iterations, salt: b64uEncode(randomBytes(SALT_BYTES)) };
}

/** Refuse parameters weaker than the floor, whoever sent them (a server could try to lower them). */
export function checkKdfParams(params) {
  if (!params || typeof params !== "object") throw new CryptoRefused("malformed", "missing key derivation parameters");
  const keys = Object.keys(params).sort().join(",");
  if (keys !== "alg,iterations,salt") throw new CryptoRefused("malformed", "key derivation needs alg, iterations, salt");
  if (params.alg !== KDF_ALG) throw new CryptoRefused("weak-kdf", `unknown key derivation ${params.alg}`);
  if (!Number.isSafeInteger(params.iterations) || params.iterations < MIN_ITERATIONS) {
    throw new CryptoRefused("weak-kdf", `key derivation needs at least ${MIN_ITERATIONS} iterations`);
  }
  if (params.iterations > MAX_ITERATIONS) {
    throw new CryptoRefused("weak-kdf", `key derivation allows at most ${MAX_ITERATIONS} iterations`);
  }
  const salt = b64uDecode(params.salt);
  if (salt.length !== SALT_BYTES) throw new CryptoRefused("weak-kdf", `the salt must be ${SALT_BYTES} bytes`);
  return { iterations: params.iterations, salt };
}

async function hkdfBits(ikm, salt, info) {
  const base = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return bytes(await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, base, 256));
}

async function aesKey(raw, extractable = false) {
  return subtle().importKey("raw", raw, { name: "AES-GCM" }, extractable, ["encrypt", "decrypt"]);
}

/**
 * passphrase + params → { kek: a non-extractable CryptoKey that wraps the data key }. Takes a second or
 * so by design. (The HKDF "auth" output the first version sent at sign-in is no longer derived here: the
 * passphrase has nothing to do with signing in.)
 */
export async function deriveKeys(passphrase, params) {
  const { iterations, salt } = checkKdfParams(params);
  const secret = ENC.encode(String(passphrase).normalize("NFC"));
  const pbkdf2 = await subtle().importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
  const master = bytes(await subtle().deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, pbkdf2, 256));
  secret.fill(0);
  const base = await subtle().importKey("raw", master, "HKDF", false, ["deriveKey", "deriveBits"]);
  master.fill(0);
  const kek = await subtle().deriveKey(
    { name: "HKDF", hash: "SHA-256", salt, info: INFO.kek }, base, { name: "AES-GCM", length: 256 }, false,
    ["encrypt", "decrypt"],
  );
  return { kek };
}

async function recoveryKek(recoveryRaw) {
  return aesKey(await hkdfBits(recoveryRaw, ZERO_SALT, INFO.recovery));
}

// ------------------------------------------------------------------------------------------ envelopes

function headerBytes(typ, ids, extra = {}) {
  const fields = { v: VERSION, typ, ...ids, ...extra };
  for (const k of Object.keys(fields)) if (!HEADER_ORDER.includes(k)) throw new Error(`unknown header field ${k}`);
  const ordered = {};
  for (const k of HEADER_ORDER) if (k in fields) ordered[k] = fields[k];
  return ENC.encode(JSON.stringify(ordered));
}

async function asAesKey(key) {
  return key instanceof Uint8Array ? aesKey(key) : key;
}

/**
 * Encrypt `plaintext` (Uint8Array) under `key` (CryptoKey or 32 raw bytes) with a typed, id-bound header.
 * `opts.iv` fixes the IV: for known-answer tests only, never in use.
 */
export async function _seal(key, typ, ids, plaintext, opts = {}) {
  const hdr = headerBytes(typ, ids, opts.extra);
  const iv = opts.iv || randomBytes(IV_BYTES);
  const ct = bytes(await subtle().encrypt(GCM(iv, hdr), await asAesKey(key), plaintext));
  return JSON.stringify({ v: VERSION, alg: ALG, hdr: b64uEncode(hdr), iv: b64uEncode(iv), ct: b64uEncode(ct) });
}

/**
 * Check an envelope's structure against what the caller asked for, without a key: shape, version,
 * algorithm, type, and exactly the expected ids (a record swapped from elsewhere is refused).
 */
export function parseEnvelope(text, typ, ids) {
  let outer;
  try {
    outer = JSON.parse(text);
  } catch {
    throw new CryptoRefused("malformed", "the envelope is not JSON");
  }
  if (!outer || typeof outer !== "object" || Array.isArray(outer) ||
      Object.keys(outer).sort().join(",") !== [...ENVELOPE_KEYS].sort().join(",")) {
    throw new CryptoRefused("malformed", "an envelope has exactly the fields v, alg, hdr, iv, ct");
  }
  if (outer.v !== VERSION) throw new CryptoRefused("version", `unknown envelope version ${outer.v}`);
  if (outer.alg !== ALG) throw new CryptoRefused("algorithm", `unknown algorithm ${outer.alg}`);
  const hdr = b64uDecode(outer.hdr);
  const iv = b64uDecode(outer.iv);
  const ct = b64uDecode(outer.ct);
  if (iv.length !== IV_BYTES) throw new CryptoRefused("malformed", "the IV must be 12 bytes");
  if (ct.length < TAG_BYTES) throw new CryptoRefused("malformed", "the ciphertext is too short");
  let header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(hdr));
  } catch {
    throw new CryptoRefused("malformed", "the header is not UTF-8 JSON");
  }
  if (!header || typeof header !== "object" || Array.isArray(header) ||
      Object.keys(header).some((k) => !HEADER_ORDER.includes(k))) {
    throw new CryptoRefused("malformed", "the header has unknown fields");
  }
  if (header.v !== VERSION) throw new CryptoRefused("version", `unknown header version ${header.v}`);
  if (header.typ !== typ) throw new CryptoRefused("type", `expected a ${typ} envelope, got ${header.typ}`);
  const present = ID_FIELDS.filter((k) => k in header);
  const wanted = ID_FIELDS.filter((k) => k in ids);
  if (present.join() !== wanted.join() || wanted.some((k) => header[k] !== ids[k])) {
    throw new CryptoRefused("ids", "the envelope belongs to another record");
  }
  if (present.some((k) => typeof header[k] !== "string" || !ID_PATTERN.test(header[k]))) {
    throw new CryptoRefused("malformed", "malformed ids in the header");
  }
  if ("z" in header && header.z !== "gzip") throw new CryptoRefused("malformed", "unknown compression");
  if ((typ === "tk-sealed") !== ("epk" in header)) throw new CryptoRefused("malformed", "misplaced ephemeral key");
  if (["dk", "dk-recovery", "tk", "tk-sealed"].includes(typ) && ct.length !== KEY_BYTES + TAG_BYTES) {
    throw new CryptoRefused("malformed", "a wrapped key is 48 bytes");
  }
  return { header, hdr, iv, ct };
}

/** Validate, then decrypt with the stored header bytes as associated data → { header, plaintext }. */
export async function openEnvelope(key, text, typ, ids) {
  const env = parseEnvelope(text, typ, ids);
  try {
    const plaintext = bytes(await subtle().decrypt(GCM(env.iv, env.hdr), await asAesKey(key), env.ct));
    return { header: env.header, plaintext };
  } catch {
    throw new CryptoRefused("decrypt", "wrong key, or the envelope was altered");
  }
}

// ------------------------------------------------------------------------------------- key hierarchy

/** A fresh data key: 32 random bytes (wrap them, then import with importDataKey and zero them). */
export function newDataKey() {
  return randomBytes(KEY_BYTES);
}

export function newTranscriptKey() {
  return randomBytes(KEY_BYTES);
}

export function newShareKey() {
  return randomBytes(KEY_BYTES);
}

/** DK bytes → a non-extractable AES-GCM key for wrapping TKs and the private key. */
export async function importDataKey(raw) {
  return aesKey(raw);
}

export async function wrapDataKey(kek, dkRaw, uid, opts = {}) {
  return _seal(kek, "dk", { uid }, dkRaw, opts);
}

/** → DK bytes; callers import them (importDataKey) and zero them. */
export async function unwrapDataKeyRaw(kek, envelope, uid) {
  return (await openEnvelope(kek, envelope, "dk", { uid })).plaintext;
}

export async function unwrapDataKey(kek, envelope, uid) {
  const raw = await unwrapDataKeyRaw(kek, envelope, uid);
  try {
    return await importDataKey(raw);
  } finally {
    raw.fill(0);
  }
}

/** A new recovery key: { raw, text }; show `text` once, never store it. */
export function newRecoveryKey() {
  const raw = randomBytes(KEY_BYTES);
  return { raw, text: formatRecoveryKey(raw) };
}

export async function wrapDataKeyForRecovery(recoveryRaw, dkRaw, uid, opts = {}) {
  return _seal(await recoveryKek(recoveryRaw), "dk-recovery", { uid }, dkRaw, opts);
}

export async function unwrapDataKeyWithRecoveryRaw(recoveryText, envelope, uid) {
  const kek = await recoveryKek(parseRecoveryKey(recoveryText));
  return (await openEnvelope(kek, envelope, "dk-recovery", { uid })).plaintext;
}

export async function wrapTranscriptKey(dk, tkRaw, uid, tid, opts = {}) {
  return _seal(dk, "tk", { uid, tid }, tkRaw, opts);
}

/** → TK bytes (needed to re-wrap to a teammate or open documents). */
export async function unwrapTranscriptKey(dk, envelope, uid, tid) {
  return (await openEnvelope(dk, envelope, "tk", { uid, tid })).plaintext;
}

/** A new ECDH P-256 key pair: { privateKey (CryptoKey), pkcs8 (bytes, wrap then zero), publicKey (65-byte point) }. */
export async function newKeyPair() {
  const pair = await subtle().generateKey(P256, true, ["deriveBits"]);
  return {
    privateKey: pair.privateKey,
    pkcs8: bytes(await subtle().exportKey("pkcs8", pair.privateKey)),
    publicKey: bytes(await subtle().exportKey("raw", pair.publicKey)),
  };
}

export async function wrapPrivateKey(dk, pkcs8, uid, opts = {}) {
  return _seal(dk, "sk", { uid }, pkcs8, opts);
}

async function pointOf(privateKey) {
  const jwk = await subtle().exportKey("jwk", privateKey);
  const point = new Uint8Array(POINT_BYTES);
  point[0] = 4;
  point.set(b64uDecode(jwk.x), 1);
  point.set(b64uDecode(jwk.y), 33);
  return point;
}

/**
 * → a non-extractable private key. With `expectedPublicKey` (the record's public key, 65 bytes) the
 * pair is checked, so a server that swapped the public key is noticed at unlock.
 */
export async function unwrapPrivateKey(dk, envelope, uid, expectedPublicKey) {
  const pkcs8 = (await openEnvelope(dk, envelope, "sk", { uid })).plaintext;
  try {
    if (expectedPublicKey) {
      const probe = await subtle().importKey("pkcs8", pkcs8, P256, true, ["deriveBits"]);
      if (!equalBytes(await pointOf(probe), expectedPublicKey)) {
        throw new CryptoRefused("ids", "the public key on record does not belong to this private key");
      }
    }
    return await subtle().importKey("pkcs8", pkcs8, P256, false, ["deriveBits"]);
  } finally {
    pkcs8.fill(0);
  }
}

async function importPoint(point) {
  if (!(point instanceof Uint8Array) || point.length !== POINT_BYTES || point[0] !== 4) {
    throw new CryptoRefused("malformed", "a public key is an uncompressed P-256 point (65 bytes)");
  }
  try {
    return await subtle().importKey("raw", point, P256, true, []);
  } catch {
    throw new CryptoRefused("malformed", "the public key is not a point on P-256");
  }
}

async function sealKey(privateKey, peerPoint, epk, recipient) {
  const shared = bytes(await subtle().deriveBits({ name: "ECDH", public: await importPoint(peerPoint) }, privateKey, 256));
  // Both public keys go into the salt, binding the key to this exact exchange.
  const salt = new Uint8Array(POINT_BYTES * 2);
  salt.set(epk, 0);
  salt.set(recipient, POINT_BYTES);
  try {
    return await aesKey(await hkdfBits(shared, salt, INFO.seal));
  } finally {
    shared.fill(0);
  }
}

/**
 * Wrap TK to a public key (ephemeral ECDH P-256 + HKDF → AES-256-GCM, typ "tk-sealed"): for a teammate,
 * or what the worker does for the owner. `opts.ephemeralPkcs8` and `opts.iv` are for known-answer tests.
 */
export async function sealToPublicKey(publicKey, tkRaw, uid, tid, opts = {}) {
  await importPoint(publicKey);
  let ephemeral;
  let epk;
  if (opts.ephemeralPkcs8) {
    ephemeral = await subtle().importKey("pkcs8", opts.ephemeralPkcs8, P256, true, ["deriveBits"]);
    epk = await pointOf(ephemeral);
  } else {
    const pair = await subtle().generateKey(P256, false, ["deriveBits"]);
    ephemeral = pair.privateKey;
    epk = bytes(await subtle().exportKey("raw", pair.publicKey));
  }
  const key = await sealKey(ephemeral, publicKey, epk, publicKey);
  return _seal(key, "tk-sealed", { uid, tid }, tkRaw, { iv: opts.iv, extra: { epk: b64uEncode(epk) } });
}

/** → TK bytes. `ownPublicKey` is the record's public key (65 bytes), part of the key derivation. */
export async function unsealWithPrivateKey(privateKey, ownPublicKey, envelope, uid, tid) {
  const env = parseEnvelope(envelope, "tk-sealed", { uid, tid });
  const epk = b64uDecode(env.header.epk);
  let key;
  try {
    key = await sealKey(privateKey, epk, epk, ownPublicKey);
  } catch (error) {
    if (error instanceof CryptoRefused) throw error;
    throw new CryptoRefused("decrypt", "this private key cannot open the sealed key");
  }
  return (await openEnvelope(key, envelope, "tk-sealed", { uid, tid })).plaintext;
}

/** After unlock: a sealed TK (from the worker) becomes a "tk" envelope under DK, to PUT back. */
export async function rewrapSealedKey(keys, sealedEnvelope, uid, tid) {
  const tk = await unsealWithPrivateKey(keys.privateKey, keys.publicKey, sealedEnvelope, uid, tid);
  try {
    return await wrapTranscriptKey(keys.dk, tk, uid, tid);
  } finally {
    tk.fill(0);
  }
}

/** A transcript's key from whichever envelope the server holds ({kind, key_envelope}). */
export async function transcriptKey(keys, stored, uid, tid) {
  if (stored.kind === "tk-sealed") return unsealWithPrivateKey(keys.privateKey, keys.publicKey, stored.key_envelope, uid, tid);
  if (stored.kind === "tk") return unwrapTranscriptKey(keys.dk, stored.key_envelope, uid, tid);
  throw new CryptoRefused("type", `unknown key envelope kind ${stored.kind}`);
}

// ------------------------------------------------------------------------------------------ documents

async function through(data, stream) {
  return bytes(await new Response(new Blob([data]).stream().pipeThrough(stream)).arrayBuffer());
}

/** gzip is used when the platform has CompressionStream (Chromium 80+, Node 18+); else stored as is. */
export function canCompress() {
  return typeof globalThis.CompressionStream === "function" && typeof globalThis.Response === "function";
}

/** Seal exact document bytes (JSON, already gzipped when `gzipped`). For tests and re-sealing. */
export async function _sealDocumentBytes(key, typ, ids, payload, gzipped, opts = {}) {
  const extra = { cty: "application/json", ...(gzipped ? { z: "gzip" } : {}) };
  return _seal(key, typ, ids, payload, { iv: opts.iv, extra });
}

async function sealDocument(key, typ, ids, doc, opts = {}) {
  const raw = ENC.encode(JSON.stringify(doc));
  const gzipped = opts.compress !== false && canCompress();
  const payload = gzipped ? await through(raw, new CompressionStream("gzip")) : raw;
  return _sealDocumentBytes(key, typ, ids, payload, gzipped, opts);
}

async function openDocument(key, envelope, typ, ids) {
  const { header, plaintext } = await openEnvelope(key, envelope, typ, ids);
  if (header.cty !== "application/json") throw new CryptoRefused("malformed", "not a JSON document");
  let payload = plaintext;
  if (header.z === "gzip") {
    if (typeof globalThis.DecompressionStream !== "function") {
      throw new CryptoRefused("malformed", "this browser cannot read compressed documents");
    }
    payload = await through(plaintext, new DecompressionStream("gzip"));
  }
  return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
}

/** A transcript document (the same JSON shape as the API's transcript) under its TK. */
export async function sealTranscript(tkRaw, doc, uid, tid, opts = {}) {
  return sealDocument(tkRaw, "transcript", { uid, tid }, doc, opts);
}

export async function openTranscript(tkRaw, envelope, uid, tid) {
  return openDocument(tkRaw, envelope, "transcript", { uid, tid });
}

/** A share snapshot under a fresh SK; the link carries SK in its fragment (#k=…), never sent to the server. */
export async function sealShare(skRaw, doc, sid, opts = {}) {
  return sealDocument(skRaw, "share", { sid }, doc, opts);
}

export async function openShare(skRaw, envelope, sid) {
  return openDocument(skRaw, envelope, "share", { sid });
}

export function shareFragment(skRaw) {
  return `#k=${b64uEncode(skRaw)}`;
}

/** SK from `location.hash`; the caller then removes the fragment with history.replaceState. */
export function shareKeyFromFragment(hash) {
  const match = /^#k=([A-Za-z0-9_-]{43})$/.exec(hash || "");
  if (!match) throw new CryptoRefused("malformed", "the link has no key");
  return b64uDecode(match[1]);
}

// ------------------------------------------------------------------------------------- whole records

/**
 * Turn private transcripts on with a passphrase of their own. → { record (PUT /api/v1/me/private-keys,
 * with the sign-in password added as current_password), recoveryKey (show once), keys ({dk, privateKey,
 * publicKey}) }. The passphrase never leaves this function.
 */
export async function enrol(passphrase, uid, iterations = MIN_ITERATIONS) {
  const kdf = newKdfParams(iterations);
  const { kek } = await deriveKeys(passphrase, kdf);
  const dkRaw = newDataKey();
  const recovery = newRecoveryKey();
  const pair = await newKeyPair();
  try {
    const dk = await importDataKey(dkRaw);
    const record = {
      kdf,
      wrapped_dk: await wrapDataKey(kek, dkRaw, uid),
      recovery_dk: await wrapDataKeyForRecovery(recovery.raw, dkRaw, uid),
      public_key: b64uEncode(pair.publicKey),
      wrapped_private_key: await wrapPrivateKey(dk, pair.pkcs8, uid),
    };
    const privateKey = await subtle().importKey("pkcs8", pair.pkcs8, P256, false, ["deriveBits"]);
    return { record, recoveryKey: recovery.text, keys: { dk, privateKey, publicKey: pair.publicKey } };
  } finally {
    dkRaw.fill(0);
    recovery.raw.fill(0);
    pair.pkcs8.fill(0);
  }
}

async function keysFromDataKey(dkRaw, record, uid) {
  try {
    const dk = await importDataKey(dkRaw);
    const publicKey = b64uDecode(record.public_key);
    const privateKey = await unwrapPrivateKey(dk, record.wrapped_private_key, uid, publicKey);
    return { dk, privateKey, publicKey };
  } finally {
    dkRaw.fill(0);
  }
}

/** Passphrase + the server's record → { dk, privateKey, publicKey }; CryptoRefused "decrypt" if wrong. */
export async function unlock(passphrase, record, uid) {
  const { kek } = await deriveKeys(passphrase, record.kdf);
  return keysFromDataKey(await unwrapDataKeyRaw(kek, record.wrapped_dk, uid), record, uid);
}

export async function unlockWithRecoveryKey(recoveryText, record, uid) {
  return keysFromDataKey(await unwrapDataKeyWithRecoveryRaw(recoveryText, record.recovery_dk, uid), record, uid);
}

/**
 * New passphrase: a new salt and KEK, the same DK re-wrapped. → { kdf, wrapped_dk } for
 * POST /api/v1/me/private-keys/passphrase. Every other envelope stays byte-identical.
 */
export async function changePassphrase(oldPassphrase, newPassphrase, record, uid) {
  const { kek } = await deriveKeys(oldPassphrase, record.kdf);
  return rewrapDataKey(await unwrapDataKeyRaw(kek, record.wrapped_dk, uid), newPassphrase, record, uid);
}

/** A forgotten passphrase: the recovery key opens DK, a new passphrase wraps it. */
export async function newPassphraseWithRecoveryKey(recoveryText, newPassphrase, record, uid) {
  return rewrapDataKey(await unwrapDataKeyWithRecoveryRaw(recoveryText, record.recovery_dk, uid), newPassphrase, record, uid);
}

async function rewrapDataKey(dkRaw, newPassphrase, record, uid) {
  try {
    const kdf = newKdfParams(Math.max(MIN_ITERATIONS, checkKdfParams(record.kdf).iterations));
    const fresh = await deriveKeys(newPassphrase, kdf);
    return { kdf, wrapped_dk: await wrapDataKey(fresh.kek, dkRaw, uid) };
  } finally {
    dkRaw.fill(0);
  }
}

/**
 * Leave a key record whose data key was wrapped under the sign-in password (which the server has seen):
 * `oldKeys` (opened with that password or the recovery key) → a whole new record under `newPassphrase`,
 * and every transcript key in `inventory` (GET /api/v1/me/private-keys/rekey) moved to the new keys:
 * own transcripts wrapped under the new DK, keys teammates shared sealed again to the new public key.
 * → { record, recoveryKey, keys, owned: {tid: envelope}, received: {tid: envelope} } for
 * POST /api/v1/me/private-keys/rekey.
 */
export async function rekey(oldKeys, newPassphrase, inventory, uid, iterations = MIN_ITERATIONS) {
  const fresh = await enrol(newPassphrase, uid, iterations);
  const owned = {}, received = {};
  for (const item of inventory.owned) {
    const tk = await transcriptKey(oldKeys, item, uid, item.transcript_id);
    try { owned[item.transcript_id] = await wrapTranscriptKey(fresh.keys.dk, tk, uid, item.transcript_id); } finally { tk.fill(0); }
  }
  for (const item of inventory.received) {
    const tk = await unsealWithPrivateKey(oldKeys.privateKey, oldKeys.publicKey, item.key_envelope, uid, item.transcript_id);
    try { received[item.transcript_id] = await sealToPublicKey(fresh.keys.publicKey, tk, uid, item.transcript_id); } finally { tk.fill(0); }
  }
  return { ...fresh, owned, received };
}
