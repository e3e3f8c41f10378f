//! How every payload to an application is signed.
//!
//! Each request carries three independent signatures over the same body:
//!
//! - `X-Space-Timestamp` (milliseconds) and `X-Space-Signature`: lowercase hex of
//!   HMAC-SHA256 over `"{timestamp}:{body}"`, keyed with the UTF-8 bytes of the signing key
//!   (the application's, or the webhook's for webhook payloads).
//! - `X-Space-Public-Key-Signature`: base64 of an RSASSA-PKCS1-v1_5 SHA-256 signature over
//!   the same `"{timestamp}:{body}"`, made with the server's RSA key, whose public half the
//!   `public-keys` endpoint serves as a JWKS (`kty` RSA, `alg` RS256).
//! - Standard Webhooks: `webhook-id` (the delivery id, stable across retries),
//!   `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of
//!   "{id}.{timestamp}.{body}">`, keyed with the same signing key bytes; as a Standard Webhooks
//!   secret that key is `whsec_` + base64(signing key).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use crate::crypto::hmac_sha256;
use crate::state::AppState;

/// Bits of the server's RSA key.
const RSA_BITS: usize = 2048;

/// A new signing key or verification token: 64 hex digits.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    hex::encode(bytes)
}

/// The Standard Webhooks form of a signing key.
pub fn standard_webhooks_secret(signing_key: &str) -> String {
    format!("whsec_{}", BASE64.encode(signing_key.as_bytes()))
}

/// `X-Space-Signature`: hex HMAC-SHA256 of `"{timestamp}:{body}"`.
pub fn space_signature(signing_key: &str, timestamp_ms: i64, body: &str) -> String {
    hex::encode(hmac_sha256(signing_key.as_bytes(), format!("{timestamp_ms}:{body}").as_bytes()))
}

/// `webhook-signature`: `v1,` + base64 HMAC-SHA256 of `"{id}.{timestamp}.{body}"`.
pub fn standard_webhooks_signature(signing_key: &str, id: &str, timestamp_s: i64, body: &str) -> String {
    let mac = hmac_sha256(signing_key.as_bytes(), format!("{id}.{timestamp_s}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac))
}

/// The server's RSA key pair for public-key signatures: parsed once, signing with `ring`.
pub struct ServerKey {
    kid: String,
    key: RsaPrivateKey,
    signer: ring::signature::RsaKeyPair,
}

impl ServerKey {
    /// The stored key, or a new one (stored first-writer-wins, so replicas agree).
    pub async fn load_or_create(state: &AppState) -> anyhow::Result<ServerKey> {
        if let Some(key) = Self::load(state).await? {
            return Ok(key);
        }
        let der = tokio::task::spawn_blocking(|| -> anyhow::Result<Vec<u8>> {
            let key = RsaPrivateKey::new(&mut rand::thread_rng(), RSA_BITS)?;
            Ok(key.to_pkcs8_der()?.as_bytes().to_vec())
        })
        .await??;
        let kid = crate::ids::random("", 16);
        state.store.insert_application_server_key(&kid, &state.secrets.seal(&der)).await?;
        Self::load(state).await?.ok_or_else(|| anyhow::anyhow!("the server key vanished after it was stored"))
    }

    async fn load(state: &AppState) -> anyhow::Result<Option<ServerKey>> {
        let Some((kid, sealed)) = state.store.application_server_key().await? else { return Ok(None) };
        Ok(Some(Self::parse(kid, &state.secrets.open(&sealed)?)?))
    }

    fn parse(kid: String, der: &[u8]) -> anyhow::Result<ServerKey> {
        let signer = ring::signature::RsaKeyPair::from_pkcs8(der)
            .map_err(|e| anyhow::anyhow!("the server's RSA key does not parse: {e}"))?;
        Ok(ServerKey { kid, key: RsaPrivateKey::from_pkcs8_der(der)?, signer })
    }

    /// Base64 RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `message`.
    pub fn sign(&self, message: &[u8]) -> anyhow::Result<String> {
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), message, &mut signature)
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        Ok(BASE64.encode(signature))
    }

    /// This public key as a JWK.
    fn jwk(&self) -> Value {
        let public = self.key.to_public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": BASE64URL.encode(public.n().to_bytes_be()),
            "e": BASE64URL.encode(public.e().to_bytes_be()),
        })
    }

    /// The JWKS of every stored server key (normally one; two replicas generating the first
    /// key at the same moment may both store one, and either's signatures must verify).
    pub async fn jwks(state: &AppState) -> anyhow::Result<Value> {
        Self::load_or_create(state).await?;
        let mut keys = Vec::new();
        for (kid, sealed) in state.store.application_server_keys().await? {
            keys.push(Self::parse(kid, &state.secrets.open(&sealed)?)?.jwk());
        }
        Ok(json!({ "keys": keys }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_signatures_match_the_reference_construction() {
        let signature = standard_webhooks_signature("key", "msg_1", 1_700_000_000, "{}");
        let expected = BASE64.encode(hmac_sha256(b"key", b"msg_1.1700000000.{}"));
        assert_eq!(signature, format!("v1,{expected}"));
        assert_eq!(standard_webhooks_secret("key"), "whsec_a2V5");
    }

    #[test]
    fn public_key_signatures_verify_with_the_published_key() {
        use rsa::traits::SignatureScheme as _;
        use sha2::{Digest as _, Sha256};

        let key = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        let server = ServerKey::parse("k".into(), der.as_bytes()).unwrap();
        let signature = BASE64.decode(server.sign(b"1:{}").unwrap()).unwrap();
        let public = key.to_public_key();
        let digest = Sha256::digest(b"1:{}");
        assert!(rsa::Pkcs1v15Sign::new::<Sha256>().verify(&public, &digest, &signature).is_ok());
        assert_eq!(server.jwk()["n"], BASE64URL.encode(public.n().to_bytes_be()));
    }

    #[test]
    fn space_signatures_cover_the_timestamp_and_the_body() {
        assert_ne!(space_signature("k", 1, "{}"), space_signature("k", 2, "{}"));
        assert_eq!(space_signature("k", 1, "{}"), hex::encode(hmac_sha256(b"k", b"1:{}")));
    }
}
