//! Outbound HTTP for guests (`http.fetch`), behind a policy: only hosts the integration's
//! manifest allows, never private or loopback addresses unless the operator allows them,
//! bounded in time and size, with every redirect checked again.
//!
//! One origin is always reachable: weft's own API (the server's public URL), which every
//! integration is given as `environment.apiEndpoint` with its tokens and which GitBook's
//! `@gitbook/api` client calls — even when that origin is on loopback or a private network.
//! Only that exact origin (scheme, host, port) is exempt; a redirect from it elsewhere is
//! checked like any other request.
//!
//! Addresses are checked after DNS resolution, inside the client's resolver, so the address
//! that is checked is the address that is connected to: a name that resolves to a public
//! address for the check and a private one for the connection (DNS rebinding) gets nowhere.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use serde_json::Value;
use weft_runtime::{HostError, OutboundRequest, OutboundResponse};

/// Operator settings for guests' outbound requests.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Allow loopback, private, link-local and other non-public addresses (tests, or an
    /// operator whose integrations call internal services).
    pub allow_private_addresses: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Redirects followed per request.
    pub max_redirects: usize,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            timeout: Duration::from_secs(10),
            max_response_bytes: 4 << 20,
            max_redirects: 5,
        }
    }
}

/// The HTTP client guests' requests go through.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    config: OutboundConfig,
    own: Option<OwnOrigin>,
}

/// weft's own API origin and the client that reaches it (its resolver is the system's: the
/// operator chose this address, wherever it points).
#[derive(Clone)]
struct OwnOrigin {
    origin: String,
    client: reqwest::Client,
}

/// `scheme://host:port` of `url`, the port spelled out even when it is the default.
fn origin(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    format!("{}://{host}:{}", url.scheme(), url.port_or_known_default().unwrap_or_default())
}

/// What both of weft's outbound clients share: redirects followed by hand (each one checked
/// again), never through a proxy from the environment (HTTP_PROXY, …: the proxy would resolve
/// and connect on the guest's behalf, past the address check), the timeout, the user agent.
fn client_builder(config: &OutboundConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .no_proxy()
        .timeout(config.timeout)
        .user_agent(concat!("weft/", env!("CARGO_PKG_VERSION")))
}

impl Outbound {
    /// A client with the guarded resolver.
    pub fn new(config: OutboundConfig) -> Self {
        let client = client_builder(&config)
            .dns_resolver(Arc::new(GuardedResolver { allow_private: config.allow_private_addresses }))
            .build()
            .expect("the HTTP client configuration is valid");
        Self { client, config, own: None }
    }

    /// Lets guests reach `public_url`'s origin (weft's own API) whatever its address.
    pub fn with_own_origin(mut self, public_url: &str) -> Self {
        let Ok(url) = reqwest::Url::parse(public_url) else { return self };
        let client = client_builder(&self.config).build().expect("the HTTP client configuration is valid");
        self.own = Some(OwnOrigin { origin: origin(&url), client });
        self
    }

    /// Whether the operator lets outbound requests reach non-public addresses.
    pub fn allows_private_addresses(&self) -> bool {
        self.config.allow_private_addresses
    }

    /// Sends `request` if `allowed` permits every hop.
    pub async fn fetch(&self, allowed: &AllowedHosts, request: OutboundRequest) -> Result<OutboundResponse, HostError> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HostError::new("bad_request", format!("`{}` is not an HTTP method", request.method)))?;
        let mut url = reqwest::Url::parse(&request.url)
            .map_err(|e| HostError::new("bad_request", format!("`{}` is not a URL: {e}", request.url)))?;
        let mut method = method;
        let mut body = Some(request.body);
        for _ in 0..=self.config.max_redirects {
            let own = self.own.as_ref().filter(|own| origin(&url) == own.origin);
            if own.is_none() {
                self.check_url(allowed, &url)?;
            }
            let client = own.map_or(&self.client, |own| &own.client);
            let mut builder = client.request(method.clone(), url.clone());
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            if let Some(body) = body.clone() {
                builder = builder.body(body);
            }
            let response = builder.send().await.map_err(|e| describe(&url, e))?;
            if response.status().is_redirection()
                && let Some(location) = response.headers().get(reqwest::header::LOCATION)
            {
                let location =
                    location.to_str().map_err(|_| HostError::new("failed", "redirect location is not text"))?;
                url =
                    url.join(location).map_err(|e| HostError::new("failed", format!("bad redirect location: {e}")))?;
                // 303, and 301/302 after a POST, continue as a GET without a body; 307/308 keep both.
                let status = response.status();
                let rewrites_to_get = status == reqwest::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && method == reqwest::Method::POST);
                if rewrites_to_get {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            return self.read(response).await;
        }
        Err(HostError::new("failed", format!("more than {} redirects", self.config.max_redirects)))
    }

    fn check_url(&self, allowed: &AllowedHosts, url: &reqwest::Url) -> Result<(), HostError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HostError::new("not_allowed", format!("scheme `{}` is not allowed", url.scheme())));
        }
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        if !allowed.permits(host) {
            return Err(HostError::new(
                "not_allowed",
                format!("host `{host}` is not in the integration's allowed hosts (contentSecurityPolicy connect-src)"),
            ));
        }
        // Literal addresses never reach the resolver: check them here.
        if let Ok(ip) = host.parse::<IpAddr>()
            && !self.config.allow_private_addresses
            && !is_public(ip)
        {
            return Err(HostError::new("not_allowed", format!("address {ip} is not a public address")));
        }
        Ok(())
    }

    async fn read(&self, mut response: reqwest::Response) -> Result<OutboundResponse, HostError> {
        let status = response.status().as_u16();
        let mut headers = BTreeMap::new();
        for (name, value) in response.headers() {
            headers.insert(name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HostError::new("failed", e.to_string()))? {
            if body.len() + chunk.len() > self.config.max_response_bytes {
                return Err(HostError::new(
                    "too_large",
                    format!("response body is larger than {} bytes", self.config.max_response_bytes),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse { status, headers, body })
    }
}

/// The resolver guests' requests use, for the server's other outbound clients (application
/// webhooks): names resolve only to public addresses unless `allow_private`.
pub fn guarded_resolver(allow_private: bool) -> Arc<impl Resolve + 'static> {
    Arc::new(GuardedResolver { allow_private })
}

/// Refuses a URL whose host is a literal non-public address (literals never reach a
/// resolver), unless `allow_private`.
pub fn check_literal_address(url: &str, allow_private: bool) -> Result<(), String> {
    let Ok(url) = reqwest::Url::parse(url) else { return Err(format!("`{url}` is not a URL")) };
    let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) if !allow_private && !is_public(ip) => Err(format!("address {ip} is not a public address")),
        _ => Ok(()),
    }
}

fn describe(url: &reqwest::Url, error: reqwest::Error) -> HostError {
    let mut message = format!("request to {url} failed: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    if message.contains(NOT_PUBLIC) {
        return HostError::new("not_allowed", message);
    }
    if error.is_timeout() {
        return HostError::new("timeout", message);
    }
    HostError::new("failed", message)
}

const NOT_PUBLIC: &str = "resolves only to non-public addresses";

/// Resolves names and keeps only the addresses guests may reach.
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> =
                resolved.into_iter().filter(|addr| allow_private || is_public(addr.ip())).collect();
            if usable.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = format!("`{host}` {NOT_PUBLIC}").into();
                return Err(error);
            }
            Ok(Box::new(usable.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// Whether `ip` is a globally routable address (not loopback, private, link-local — which
/// includes cloud metadata services —, shared, documentation, multicast, …).
pub fn is_public(ip: IpAddr) -> bool {
    // (An address that carries an IPv4 address is as public as that address.)
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_ipv4(v6) {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0xdb8) // documentation
        }
    }
}

/// The IPv4 address an IPv6 address stands for, where one reaches it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still routed by some
/// stacks), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`). A guest must not reach
/// 127.0.0.1 by spelling it `::127.0.0.1`.
fn embedded_ipv4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let from = |high: u16, low: u16| std::net::Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match s {
        // ::/96, but not :: and ::1 themselves (unspecified and loopback, refused below).
        [0, 0, 0, 0, 0, 0, high, low] if high != 0 => Some(from(high, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(from(high, low)),
        [0x2002, high, low, ..] => Some(from(high, low)),
        _ => None,
    }
}

/// The hosts an integration may call, from its manifest's `contentSecurityPolicy`
/// `connect-src` (a CSP string, or an object with a `connect-src` entry). Deny by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<String>,
}

impl AllowedHosts {
    /// Reads the allowed hosts from an integration manifest.
    pub fn from_manifest(manifest: &Value) -> Self {
        let sources = match &manifest["contentSecurityPolicy"] {
            Value::String(policy) => policy
                .split(';')
                .filter_map(|directive| directive.trim().strip_prefix("connect-src"))
                .flat_map(|sources| sources.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            Value::Object(policy) => match policy.get("connect-src") {
                Some(Value::String(sources)) => sources.split_whitespace().map(str::to_owned).collect(),
                Some(Value::Array(sources)) => sources.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        let patterns = sources
            .iter()
            .filter(|source| !source.starts_with('\''))
            .map(|source| {
                let host = source.split_once("://").map_or(source.as_str(), |(_, rest)| rest);
                let host = host.split(['/', '?']).next().unwrap_or(host);
                let host = host
                    .rsplit_once(':')
                    .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
                    .map_or(host, |(h, _)| h);
                host.to_ascii_lowercase()
            })
            .filter(|host| !host.is_empty())
            .collect();
        Self { patterns }
    }

    /// Whether `host` matches a pattern: exact, `*.example.com` (any subdomain) or `*`.
    pub fn permits(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.patterns.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => pattern == "*" || *pattern == host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn allowed_hosts_come_from_connect_src_with_wildcards() {
        let allowed = AllowedHosts::from_manifest(&json!({
            "contentSecurityPolicy": "default-src 'self'; connect-src https://api.example.com:8443/v1 *.slack.com 'self'"
        }));
        assert!(allowed.permits("api.example.com"));
        assert!(allowed.permits("hooks.slack.com"));
        assert!(!allowed.permits("slack.com.evil.net"));
        assert!(!allowed.permits("example.com"));
        assert!(!AllowedHosts::from_manifest(&json!({})).permits("example.com"), "deny by default");
        let object = AllowedHosts::from_manifest(&json!({"contentSecurityPolicy": {"connect-src": ["127.0.0.1"]}}));
        assert!(object.permits("127.0.0.1"));
    }

    #[test]
    fn literal_private_addresses_are_refused_unless_allowed() {
        assert!(check_literal_address("http://169.254.169.254/latest", false).unwrap_err().contains("not a public"));
        assert!(check_literal_address("http://[::1]:8080/", false).is_err());
        assert!(check_literal_address("http://127.0.0.1:8080/", true).is_ok());
        assert!(check_literal_address("https://hooks.example.com/x", false).is_ok(), "names are checked on resolution");
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "64:ff9b::1.1.1.1", "2002:101:101::1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
