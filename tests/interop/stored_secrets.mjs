// Reads and writes the reconciler's stored-secret formats with Node.js's own `crypto` only,
// as a TypeScript service would (docs/stored-secrets.md). No dependencies.
//
//   node stored_secrets.mjs decrypt        < {keyring, fingerprint_key, items: [...]}
//   node stored_secrets.mjs encrypt-token  < {keyring, items: [...]}
//
// Input on stdin and output on stdout are JSON. Keys are standard base64; `keyring` maps
// a key version ("1") to its 32-byte key.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const NONCE = 12;
const GCM_TAG = 16;
const BINDING = 32;

// Canonical JSON: JSON.stringify of an array of strings and integers has no whitespace and
// writes non-ASCII characters as themselves, which is the reconciler's form.
const canonical = (fields) => Buffer.from(JSON.stringify(fields), "utf8");

function strictBase64(text) {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new Error("not valid padded base64");
  }
  return Buffer.from(text, "base64");
}

function keyFor(keyring, version) {
  const key = keyring[String(version)];
  if (key === undefined) throw new Error(`key version ${version} is not in the keyring`);
  const bytes = strictBase64(key);
  if (bytes.length !== 32) throw new Error(`key version ${version} is not 32 bytes`);
  return bytes;
}

const hmac = (key, ...parts) => {
  const mac = createHmac("sha256", key);
  for (const part of parts) mac.update(part);
  return mac.digest();
};

function open(key, nonce, sealed, aad) {
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG));
  const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - GCM_TAG)), decipher.final()]);
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}

function decrypt(input, item) {
  const { table, column, tenant, row_key: rowKey, key_version: version, fingerprint, stored } = item;
  const key = keyFor(input.keyring, version);
  const fingerprintKey = strictBase64(input.fingerprint_key);
  let plaintext;
  if (stored.startsWith("rcn2:")) {
    const blob = strictBase64(stored.slice(5));
    if (blob.length < NONCE + GCM_TAG + BINDING) throw new Error("truncated");
    const nonce = blob.subarray(0, NONCE);
    const sealed = blob.subarray(NONCE, blob.length - BINDING);
    const tag = blob.subarray(blob.length - BINDING);
    const expected = hmac(
      fingerprintKey,
      Buffer.from("reconciler/binding/v1\0", "utf8"),
      canonical([table, column, tenant, rowKey, fingerprint, version]),
      nonce,
      sealed,
    );
    if (!timingSafeEqual(expected, tag)) throw new Error("binding tag does not verify");
    const aad = canonical(["reconciler/field/v2", table, column, tenant, rowKey, fingerprint]);
    plaintext = open(key, nonce, sealed, aad);
  } else if (stored.startsWith("rcn1:")) {
    const blob = strictBase64(stored.slice(5));
    if (blob.length < NONCE + GCM_TAG) throw new Error("truncated");
    const aad = canonical(["reconciler/field/v1", table, column, tenant, rowKey]);
    plaintext = open(key, blob.subarray(0, NONCE), blob.subarray(NONCE), aad);
  } else {
    throw new Error("unknown format");
  }
  if (fingerprint !== null && fingerprint !== undefined) {
    const mine = hmac(fingerprintKey, Buffer.from("reconciler/fingerprint/v1\0", "utf8"), Buffer.from(plaintext, "utf8"));
    if (!timingSafeEqual(Buffer.from(mine.toString("hex")), Buffer.from(fingerprint))) {
      throw new Error("the value is not its fingerprint's");
    }
  }
  return plaintext;
}

function encryptToken(input, item) {
  const { tenant, id, column, key_version: version, token } = item;
  const key = keyFor(input.keyring, version);
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(canonical(["reconciler/field/v1", "oauth_tokens", column, tenant, String(id)]));
  const body = Buffer.concat([cipher.update(token, "utf8"), cipher.final()]);
  return "rcn1:" + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64");
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const mode = process.argv[2];
if (mode === "decrypt") {
  process.stdout.write(JSON.stringify({ plaintexts: input.items.map((item) => decrypt(input, item)) }));
} else if (mode === "encrypt-token") {
  process.stdout.write(JSON.stringify({ stored: input.items.map((item) => encryptToken(input, item)) }));
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
