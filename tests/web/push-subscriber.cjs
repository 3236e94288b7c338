// A browser's side of Web Push, for the tests: what a browser does when it
// subscribes (a P-256 key pair and a 16-byte auth secret), and when its push
// service hands it a message (decrypt it and check who sent it). Written with
// Node's own crypto and `http_ece` — the encrypted content coding's reference
// implementation, by the author of RFC 8188 and RFC 8291 — so the daemon's
// Rust encryption is checked against code it shares nothing with.
//
//   node push-subscriber.cjs keys   → {"p256dh", "auth", "private"} (base64url)
//   node push-subscriber.cjs open   ← stdin {"subscriber", "message", "vapidKey"}
//                                   → {"payload", "claims", "signatureValid", ...}
// where `message` is a record of the mock push service (headers, body in base64).
"use strict";
const crypto = require("node:crypto");
const path = require("node:path");
const ece = require(require.resolve("http_ece", { paths: [path.join(__dirname, "../../web")] }));

const b64u = (buf) => Buffer.from(buf).toString("base64url");

function keys() {
  const ecdh = crypto.createECDH("prime256v1");
  ecdh.generateKeys();
  return { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(crypto.randomBytes(16)), private: b64u(ecdh.getPrivateKey()) };
}

/** The P-256 public key `raw` (65 bytes, uncompressed) as a KeyObject. */
function publicKey(raw) {
  return crypto.createPublicKey({
    key: { kty: "EC", crv: "P-256", x: b64u(raw.subarray(1, 33)), y: b64u(raw.subarray(33, 65)) },
    format: "jwk",
  });
}

function open({ subscriber, message, vapidKey }) {
  const ecdh = crypto.createECDH("prime256v1");
  ecdh.setPrivateKey(Buffer.from(subscriber.private, "base64url"));
  const body = Buffer.from(message.body, "base64");
  const plaintext = ece.decrypt(body, { version: "aes128gcm", privateKey: ecdh, authSecret: subscriber.auth });
  // RFC 8292: Authorization: vapid t=<JWT>, k=<the sender's public key>
  const auth = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(message.headers.authorization || "");
  if (!auth) throw new Error(`no VAPID authorization: ${message.headers.authorization}`);
  const [header, claims, signature] = auth[1].split(".");
  const signatureValid = crypto.verify(
    "sha256",
    Buffer.from(`${header}.${claims}`),
    { key: publicKey(Buffer.from(auth[2], "base64url")), dsaEncoding: "ieee-p1363" },
    Buffer.from(signature, "base64url"),
  );
  return {
    payload: JSON.parse(plaintext.toString("utf8")),
    jwtHeader: JSON.parse(Buffer.from(header, "base64url").toString("utf8")),
    claims: JSON.parse(Buffer.from(claims, "base64url").toString("utf8")),
    signatureValid,
    keyMatches: auth[2] === vapidKey,
    recordSize: body.readUInt32BE(16),
    headers: message.headers,
  };
}

const mode = process.argv[2];
if (mode === "keys") {
  console.log(JSON.stringify(keys()));
} else if (mode === "open") {
  let input = "";
  process.stdin.on("data", (d) => (input += d));
  process.stdin.on("end", () => console.log(JSON.stringify(open(JSON.parse(input)))));
} else {
  console.error("usage: push-subscriber.cjs keys | open");
  process.exit(2);
}
