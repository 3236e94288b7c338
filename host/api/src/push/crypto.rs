//! The cryptography of a Web Push message, with `ring` (the crypto the proxy
//! already uses, so no second stack and no OpenSSL):
//! - the payload encrypted for one browser, RFC 8291 (ECDH P-256 with the
//!   subscription's key, HKDF-SHA-256 with its auth secret) in the
//!   `aes128gcm` content coding of RFC 8188: one record, the sender's
//!   ephemeral public key as the key id;
//! - the VAPID identification of RFC 8292: an ES256 JWT for the endpoint's
//!   origin and the daemon's key, sent as `Authorization: vapid t=…, k=…`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use ring::{aead, hkdf};

/// The record size written in the header: more than any payload we send
/// (a push service takes at most 4,096 bytes of body).
const RECORD_SIZE: u32 = 4096;

/// The most payload one message carries: the body is the 86-byte header,
/// the payload, its delimiter and the 16-byte tag, within 4,096 bytes.
pub const MAX_PAYLOAD: usize = 3993;

/// What went wrong building a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PushCryptoError {
    #[error("the subscription's key (p256dh) is not a P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret must be 16 bytes")]
    BadAuth,
    #[error("the payload is {0} bytes; a push message carries at most {MAX_PAYLOAD}")]
    TooLong(usize),
    #[error("the daemon's VAPID key is unusable: {0}")]
    BadKey(String),
    #[error("the system's random source failed")]
    Random,
}

/// A length for `ring`'s HKDF output.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand(`prk`, `info`) to `out.len()` bytes.
fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) {
    // The lengths asked for (12, 16, 32) are far below HKDF's limit.
    if let Ok(okm) = prk.expand(info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// Encrypt `payload` for the browser whose subscription holds `ua_public`
/// (65 bytes, uncompressed) and `auth` (16 bytes): the whole request body.
pub fn encrypt(payload: &[u8], ua_public: &[u8], auth: &[u8]) -> Result<Vec<u8>, PushCryptoError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt).map_err(|_| PushCryptoError::Random)?;
    let key = EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| PushCryptoError::Random)?;
    encrypt_with(payload, ua_public, auth, salt, key)
}

/// [`encrypt`] with the salt and the sender's key given (fixed in the RFC's example).
fn encrypt_with(
    payload: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    salt: [u8; 16],
    key: EphemeralPrivateKey,
) -> Result<Vec<u8>, PushCryptoError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PushCryptoError::TooLong(payload.len()));
    }
    if auth.len() != 16 {
        return Err(PushCryptoError::BadAuth);
    }
    if ua_public.len() != 65 || ua_public[0] != 4 {
        return Err(PushCryptoError::BadPublicKey);
    }
    let as_public = key.compute_public_key().map_err(|_| PushCryptoError::Random)?;
    let as_public = as_public.as_ref().to_vec();
    // RFC 8291 §3.3-3.4: IKM from the shared secret and the auth secret,
    // bound to both public keys.
    let mut ikm = [0u8; 32];
    agreement::agree_ephemeral(key, &UnparsedPublicKey::new(&ECDH_P256, ua_public), |shared| {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(shared);
        expand(&prk, &[b"WebPush: info\0", ua_public, &as_public], &mut ikm);
    })
    .map_err(|_| PushCryptoError::BadPublicKey)?;
    // RFC 8188 §2.2-2.3: the content key and nonce from the salt.
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    expand(&prk, &[b"Content-Encoding: aes128gcm\0"], &mut cek);
    expand(&prk, &[b"Content-Encoding: nonce\0"], &mut nonce);
    // One record, the last: the payload and the delimiter 2, no padding.
    let mut record = Vec::with_capacity(payload.len() + 17);
    record.extend_from_slice(payload);
    record.push(2);
    let sealing = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(|_| PushCryptoError::BadKey("AES key".into()))?,
    );
    sealing
        .seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record)
        .map_err(|_| PushCryptoError::BadKey("sealing".into()))?;
    // The header: salt, record size, key id (the sender's public key).
    let mut body = Vec::with_capacity(86 + record.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.len() as u8);
    body.extend_from_slice(&as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// The daemon's VAPID key: an ECDSA P-256 key pair kept as PKCS#8.
pub struct Vapid {
    key: EcdsaKeyPair,
}

impl Vapid {
    /// A new key, as PKCS#8 bytes to keep.
    pub fn generate() -> Result<Vec<u8>, PushCryptoError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| PushCryptoError::Random)
    }

    /// The key kept as `pkcs8`.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, PushCryptoError> {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &SystemRandom::new())
            .map(|key| Self { key })
            .map_err(|e| PushCryptoError::BadKey(e.to_string()))
    }

    /// The public key as a browser's `applicationServerKey` takes it:
    /// base64url of the 65-byte uncompressed point.
    pub fn public_key(&self) -> String {
        B64.encode(self.key.public_key().as_ref())
    }

    /// The `Authorization` header for a push to `origin` (the endpoint's
    /// scheme and authority): a JWT valid until `expires` (Unix seconds),
    /// naming `subject` (a `mailto:` or `https:` contact).
    pub fn authorization(&self, origin: &str, subject: &str, expires: u64) -> Result<String, PushCryptoError> {
        let header = B64.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": origin, "exp": expires, "sub": subject });
        let signing_input = format!("{header}.{}", B64.encode(claims.to_string()));
        let signature = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| PushCryptoError::BadKey("signing".into()))?;
        Ok(format!("vapid t={signing_input}.{}, k={}", B64.encode(signature.as_ref()), self.public_key()))
    }
}

/// `text` as base64url (padded or not, as browsers send it), decoded.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8291, Appendix A: the example's keys, salt and message give its body, byte for byte.
    #[test]
    #[allow(deprecated)]
    fn the_rfcs_example_encrypts_to_the_rfcs_body() {
        let as_private = decode("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw").expect("b64");
        // ring makes an ephemeral key from its random source; this one gives the example's.
        let fixed = ring::test::rand::FixedSliceRandom { bytes: &as_private };
        let key = EphemeralPrivateKey::generate(&ECDH_P256, &fixed).expect("key");
        let ua_public =
            decode("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
                .expect("b64");
        let auth = decode("BTBZMqHH6r4Tts7J_aSIgg").expect("b64");
        let salt: [u8; 16] = decode("DGv6ra1nlYgDCS1FRnbzlw").expect("b64").try_into().expect("16 bytes");
        let body =
            encrypt_with(b"When I grow up, I want to be a watermelon", &ua_public, &auth, salt, key).expect("encrypt");
        assert_eq!(
            B64.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn bad_subscription_keys_and_long_payloads_are_refused() {
        let ua_public =
            decode("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4")
                .expect("b64");
        let auth = [7u8; 16];
        assert_eq!(encrypt(b"x", &ua_public[..64], &auth), Err(PushCryptoError::BadPublicKey));
        let mut off_curve = ua_public.clone();
        off_curve[40] ^= 1;
        assert_eq!(encrypt(b"x", &off_curve, &auth), Err(PushCryptoError::BadPublicKey));
        assert_eq!(encrypt(b"x", &ua_public, &auth[..15]), Err(PushCryptoError::BadAuth));
        let long = vec![b'a'; MAX_PAYLOAD + 1];
        assert_eq!(encrypt(&long, &ua_public, &auth), Err(PushCryptoError::TooLong(MAX_PAYLOAD + 1)));
        let body = encrypt(&long[..MAX_PAYLOAD], &ua_public, &auth).expect("the longest payload");
        assert_eq!(body.len(), 4096, "header, payload, delimiter and tag fill one record exactly");
    }

    #[test]
    fn the_vapid_header_is_a_verifiable_es256_jwt_for_the_origin() {
        let vapid = Vapid::from_pkcs8(&Vapid::generate().expect("key")).expect("key");
        let header =
            vapid.authorization("https://push.example.test", "mailto:me@example.test", 1_900_000_000).expect("jwt");
        let (t, k) = header.strip_prefix("vapid t=").and_then(|r| r.split_once(", k=")).expect("vapid t=…, k=…");
        assert_eq!(k, vapid.public_key());
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(
            claims,
            serde_json::json!({"aud": "https://push.example.test", "exp": 1_900_000_000u64, "sub": "mailto:me@example.test"})
        );
        let public =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, decode(k).expect("b64"));
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &decode(parts[2]).expect("b64")).expect("the signature verifies");
        assert!(public.verify(b"another message", &decode(parts[2]).expect("b64")).is_err());
    }
}
