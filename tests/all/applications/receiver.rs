//! A real HTTP receiver on a loopback port that records what applications are sent and
//! answers with scripted statuses, plus independent checks of every signature scheme.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use hmac::{Hmac, Mac};
use rsa::traits::SignatureScheme as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: String,
}

impl Hit {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).unwrap_or_else(|| panic!("missing header {name}")).to_str().unwrap().to_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Clone, Default)]
struct Shared {
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

/// The receiver; answers 200 once its script runs out.
pub struct Receiver {
    pub url: String,
    shared: Shared,
}

pub async fn receiver(script: &[u16]) -> Receiver {
    let shared = Shared { script: Arc::new(Mutex::new(script.iter().copied().collect())), ..Shared::default() };
    let app = recording(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, shared }
}

/// The same receiver over HTTPS, with a self-signed certificate for 127.0.0.1 made by the
/// `openssl` command: a client that verifies certificates refuses it.
pub async fn tls_receiver() -> Receiver {
    let shared = Shared::default();
    let app = recording(shared.clone());
    let listener = TlsListener::bind().await;
    let url = format!("https://{}/hook", listener.tcp.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, shared }
}

/// Records each request and answers the next scripted status.
fn recording(shared: Shared) -> axum::Router {
    axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
        let shared = shared.clone();
        async move {
            shared.hits.lock().unwrap().push(Hit { headers, body });
            let status = shared.script.lock().unwrap().pop_front().unwrap_or(200);
            StatusCode::from_u16(status).unwrap()
        }
    })
}

/// A loopback listener that completes a TLS handshake before handing a connection to axum
/// (a client that gives up on the certificate never reaches the handler).
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    async fn bind() -> TlsListener {
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl command makes the test certificate");
        assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
        let chain = vec![CertificateDer::from_pem_file(&cert).unwrap()];
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, PrivateKeyDer::from_pem_file(&key).unwrap())
            .unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            // A client that refuses the certificate ends here.
            if let Ok(stream) = self.acceptor.accept(stream).await {
                return (stream, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

impl Receiver {
    /// Waits until at least `count` requests arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hits = self.hits();
            if hits.len() >= count {
                return hits;
            }
            assert!(Instant::now() < deadline, "only {} of {count} requests arrived", hits.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }
}

fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Checks `X-Space-Signature` against the signing key.
pub fn verify_space_signature(hit: &Hit, signing_key: &str) {
    let timestamp = hit.header("x-space-timestamp");
    let expected = hex::encode(hmac(signing_key.as_bytes(), format!("{timestamp}:{}", hit.body).as_bytes()));
    assert_eq!(hit.header("x-space-signature"), expected, "X-Space-Signature");
}

/// Checks the Standard Webhooks headers against the signing key.
pub fn verify_standard_webhooks(hit: &Hit, signing_key: &str) {
    let (id, timestamp) = (hit.header("webhook-id"), hit.header("webhook-timestamp"));
    let expected = BASE64.encode(hmac(signing_key.as_bytes(), format!("{id}.{timestamp}.{}", hit.body).as_bytes()));
    assert_eq!(hit.header("webhook-signature"), format!("v1,{expected}"), "webhook-signature");
    let space_ms: i64 = hit.header("x-space-timestamp").parse().unwrap();
    assert_eq!(timestamp.parse::<i64>().unwrap(), space_ms / 1000);
}

/// Checks `X-Space-Public-Key-Signature` with a key from the JWKS; `false` when none verifies.
pub fn public_key_signature_verifies(hit: &Hit, jwks: &Value) -> bool {
    let signature = BASE64.decode(hit.header("x-space-public-key-signature")).unwrap();
    let message = format!("{}:{}", hit.header("x-space-timestamp"), hit.body);
    let digest = Sha256::digest(message.as_bytes());
    jwks["keys"].as_array().unwrap().iter().any(|key| {
        assert_eq!(key["kty"], "RSA");
        let n = rsa::BigUint::from_bytes_be(&BASE64URL.decode(key["n"].as_str().unwrap()).unwrap());
        let e = rsa::BigUint::from_bytes_be(&BASE64URL.decode(key["e"].as_str().unwrap()).unwrap());
        let public = rsa::RsaPublicKey::new(n, e).unwrap();
        rsa::Pkcs1v15Sign::new::<Sha256>().verify(&public, &digest, &signature).is_ok()
    })
}
