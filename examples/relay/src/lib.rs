//! `relay`: a webhook relay. A third party POSTs to the installation's public endpoint,
//! signing the raw body with a secret it shares with the installation; the relay checks
//! the signature and forwards the body, unchanged, to the URL the installation configured.
//!
//! ```text
//! POST /v1/integrations/relay/installations/inst_x/fetch/any/path
//! X-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the configured secret>
//! → 202 {"forwarded":true,"status":200}      (the forward URL answered 200)
//! → 401 {"error":…}                          (no signature, or a wrong one: nothing is sent)
//! → 502 {"error":…}                          (the forward URL failed or answered non-2xx)
//! ```
//!
//! Configuration (`env.config::<Config>()`): `secret`, `forwardUrl`, and optionally
//! `signatureHeader` (default `X-Signature`). `installation_setup` refuses a forward URL that
//! is not http(s), so a bad one is rejected when the installation is configured.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;
use weft_sdk::http::{self, OutboundRequest};
use weft_sdk::{Environment, Error, Handler, LifecycleEvent, Request, Response, Result};

/// The header the signature is read from unless the configuration names another.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-signature";

/// The installation's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The shared secret the sender signs with.
    pub secret: String,
    /// Where verified bodies are POSTed.
    pub forward_url: String,
    /// The signature header's name.
    #[serde(default = "default_header")]
    pub signature_header: String,
}

fn default_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_owned()
}

impl Config {
    /// The configuration of `env`, with the problems `installation_setup` refuses.
    fn of(env: &Environment) -> Result<Self> {
        let config: Config = env.config().map_err(|err| Error::bad_request(err.message().to_owned()))?;
        if !(config.forward_url.starts_with("https://") || config.forward_url.starts_with("http://")) {
            return Err(Error::bad_request("forwardUrl: must be an http:// or https:// URL"));
        }
        if config.secret.trim().is_empty() {
            return Err(Error::bad_request("secret: must not be blank"));
        }
        Ok(config)
    }
}

/// The value of the signature header for `body` signed with `secret`: `sha256=<hex>`.
///
/// ```
/// assert_eq!(
///     relay::signature("It's a Secret to Everybody", b"Hello, World!"),
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
/// );
/// ```
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks `header` (`sha256=<hex>`) against `body`, in constant time.
pub fn verify(secret: &str, body: &[u8], header: &str) -> Result<()> {
    let invalid = || Error::unauthorized("invalid signature");
    let (scheme, hex_digest) = header.trim().split_once('=').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("sha256") {
        return Err(Error::unauthorized("unsupported signature scheme: expected sha256=<hex>"));
    }
    let expected = hex::decode(hex_digest).map_err(|_| invalid())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| invalid())
}

/// The integration.
#[derive(Debug, Default)]
pub struct Relay;

impl Handler for Relay {
    fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
        if req.method != "POST" {
            return Err(Error::new(405, "the relay accepts only POST"));
        }
        let config = Config::of(env).map_err(|err| Error::internal(format!("relay is misconfigured: {err}")))?;
        let header = req
            .header(&config.signature_header)
            .ok_or_else(|| Error::unauthorized(format!("missing {} header", config.signature_header)))?;
        if let Err(err) = verify(&config.secret, &req.body, header) {
            log::warn!("refused a post to {}: {err}", req.path);
            return Err(err);
        }

        let content_type = req.header("content-type").unwrap_or("application/octet-stream");
        let forward = OutboundRequest::post(&config.forward_url)
            .with_header("content-type", content_type)
            .with_header("x-relayed-by", "weft-relay")
            .with_header("x-relay-path", &req.path)
            .with_body(req.body.clone());
        let upstream = http::fetch(forward).map_err(|err| Error::new(502, format!("forwarding failed: {err}")))?;
        if !upstream.is_success() {
            log::warn!("{} answered {}", config.forward_url, upstream.status);
            return Err(Error::new(502, format!("forwarding failed: the forward URL answered {}", upstream.status)));
        }
        log::info!("forwarded {} bytes from {} ({})", req.body.len(), req.path, upstream.status);
        Ok(Some(Response::json(&json!({"forwarded": true, "status": upstream.status}))?.with_status(202)))
    }

    fn installation_setup(&self, _event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let config = Config::of(env)?;
        log::info!("relaying to {}", config.forward_url);
        Ok(())
    }
}

weft_sdk::export_handler!(Relay);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use weft_sdk::http::OutboundResponse;
    use weft_sdk::testing::{self, MockHost};

    const SECRET: &str = "a-shared-secret-of-some-length";
    const TARGET: &str = "https://hooks.example.com/in";

    fn env() -> Environment {
        Environment::default().with_configuration(json!({"secret": SECRET, "forwardUrl": TARGET}))
    }

    fn post(body: &str, signature: Option<String>) -> Request {
        let mut req =
            testing::fetch_request("POST", "/github").with_body(body).with_header("content-type", "application/json");
        if let Some(signature) = signature {
            req = req.with_header("X-Signature", signature);
        }
        req
    }

    #[test]
    fn a_correctly_signed_post_is_forwarded_unchanged() {
        let host = MockHost::new();
        host.respond(TARGET, OutboundResponse::new(200));
        let body = r#"{"action":"opened"}"#;
        let res = testing::fetch(&Relay, post(body, Some(signature(SECRET, body.as_bytes()))), &env())
            .into_response()
            .expect("a response");
        assert_eq!(res.status, 202);
        assert_eq!(res.body_json::<Value>().unwrap(), json!({"forwarded": true, "status": 200}));
        let sent = &host.fetches()[0];
        assert_eq!((sent.method.as_str(), sent.url.as_str()), ("POST", TARGET));
        assert_eq!(sent.body.as_deref(), Some(body.as_bytes()));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.header("x-relay-path"), Some("/github"));
        assert_eq!(host.log_messages(), ["forwarded 19 bytes from /github (200)"]);
    }

    #[test]
    fn a_missing_or_wrong_signature_is_refused_with_401_and_nothing_is_sent() {
        let host = MockHost::new();
        host.respond(TARGET, OutboundResponse::new(200));
        let body = "{}";
        for signature in [
            None,
            Some(signature("another-secret-entirely", body.as_bytes())),
            Some(signature(SECRET, b"a different body")),
            Some("sha256=zz".to_owned()),
            Some("nonsense".to_owned()),
            Some(signature(SECRET, body.as_bytes()).replace("sha256", "sha1")),
        ] {
            let err = testing::fetch(&Relay, post(body, signature.clone()), &env()).into_error().expect("an error");
            assert_eq!(err.status(), 401, "{signature:?}: {err}");
        }
        assert!(host.fetches().is_empty());
    }

    #[test]
    fn the_signature_header_can_be_configured() {
        let host = MockHost::new();
        host.respond(TARGET, OutboundResponse::new(204));
        let env = Environment::default().with_configuration(
            json!({"secret": SECRET, "forwardUrl": TARGET, "signatureHeader": "X-Hub-Signature-256"}),
        );
        let req = testing::fetch_request("POST", "/")
            .with_body("hi")
            .with_header("x-hub-signature-256", signature(SECRET, b"hi"));
        let res = testing::fetch(&Relay, req, &env).into_response().unwrap();
        assert_eq!(res.status, 202);
        assert_eq!(host.fetches()[0].header("content-type"), Some("application/octet-stream"));
    }

    #[test]
    fn forwarding_failures_answer_502() {
        let host = MockHost::new();
        let body = "{}";
        let signed = || post(body, Some(signature(SECRET, body.as_bytes())));
        host.respond(TARGET, OutboundResponse::new(500));
        let err = testing::fetch(&Relay, signed(), &env()).into_error().unwrap();
        assert_eq!(err.status(), 502);
        assert!(err.message().contains("answered 500"), "{err}");

        host.respond_error(TARGET, "not_allowed", "host not allowed");
        let err = testing::fetch(&Relay, signed(), &env()).into_error().unwrap();
        assert_eq!(err.status(), 502);
        assert!(err.message().contains("not_allowed"), "{err}");
    }

    #[test]
    fn only_post_is_accepted() {
        let _host = MockHost::new();
        let err = testing::fetch(&Relay, testing::fetch_request("GET", "/"), &env()).into_error().unwrap();
        assert_eq!(err.status(), 405);
    }

    #[test]
    fn setup_refuses_a_forward_url_that_is_not_http() {
        let _host = MockHost::new();
        let setup = || testing::event("installation_setup", json!({}));
        let bad = Environment::default().with_configuration(json!({"secret": SECRET, "forwardUrl": "ftp://x"}));
        let err = testing::run(&Relay, setup(), &bad).into_error().unwrap();
        assert_eq!((err.status(), err.message()), (400, "forwardUrl: must be an http:// or https:// URL"));
        let missing = Environment::default().with_configuration(json!({"forwardUrl": TARGET}));
        let err = testing::run(&Relay, setup(), &missing).into_error().unwrap();
        assert_eq!(err.status(), 400);
        assert!(err.message().contains("secret"), "{err}");
        assert!(testing::run(&Relay, setup(), &env()).is_none());
    }
}
