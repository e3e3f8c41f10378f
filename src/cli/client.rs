//! What every command that talks to a server shares: where the server is, the token, and
//! one small client that turns the API's `{"error":{"code","message"}}` into an error that
//! names the request and the status, so no command parses errors on its own.

use anyhow::Context as _;
use clap::Args;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// `--api-url` and `--token`, flattened into every command that calls the server.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// The server's URL.
    #[arg(long, env = "WEFT_API_URL", default_value = "http://127.0.0.1:8080")]
    pub api_url: String,
    /// A bearer token: the admin token, a user token of an admin of the organization, or
    /// (for its own integration) the integration token that the first publish printed.
    #[arg(long, env = "WEFT_TOKEN", hide_env_values = true)]
    pub token: String,
}

/// A client for the `/v1` API of one server, with one token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl ApiClient {
    pub fn new(args: &ApiArgs) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: args.api_url.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
        }
    }

    /// The server's base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (under the base URL) with the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// `GET path?query` → the JSON answer.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.json(self.request(Method::GET, path).query(query)).await
    }

    /// `method path` with a JSON body → the JSON answer (`null` for an empty one, e.g. 204).
    pub async fn send_json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(self.request(method, path).json(body)).await
    }

    /// Sends `request` and reads its JSON answer; a non-2xx status is an error.
    pub async fn json(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        let response = self.send(request).await?;
        let text = response.text().await.context("reading the server's answer")?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("the server's answer is not JSON: {text}"))
    }

    /// Sends `request` and returns the response when its status is a success; otherwise an
    /// error such as `POST /v1/integrations/x failed with 400 Bad Request: title must be …`.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let request = request.build().context("building the request")?;
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = self.http.execute(request).await.map_err(|error| {
            anyhow::anyhow!(
                "cannot reach the server at {} ({}); is `weft serve` running there? \
                 (set --api-url or WEFT_API_URL)",
                self.base,
                error_chain(&error)
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| if text.is_empty() { "no error message".to_owned() } else { text });
        let hint = match status.as_u16() {
            401 => " (check --token or WEFT_TOKEN)",
            _ => "",
        };
        anyhow::bail!("{method} {} failed with {status}: {message}{hint}", url.path())
    }
}

/// reqwest's error with its sources, which hold the useful part ("connection refused").
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
