//! HTTP types: the incoming [`Request`] of a `fetch` event, the [`Response`] a handler
//! answers with, and outbound requests made through the host with [`fetch`].
//!
//! Bodies are bytes; on the wire (JSON) they travel as base64. Header names are matched
//! case-insensitively and stored lowercase by the builders.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::codec::{base64_body, null_default};
use crate::{Error, Result, host};

/// HTTP headers: name → value. Multiple values of one header are joined by the host.
pub type Headers = BTreeMap<String, String>;

fn find_header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

fn set_header(headers: &mut Headers, name: &str, value: String) {
    headers.retain(|key, _| !key.eq_ignore_ascii_case(name));
    headers.insert(name.to_ascii_lowercase(), value);
}

/// The request of a `fetch` event: a call a third party made to the installation's public
/// endpoint `…/v1/integrations/{name}/installations/{id}/…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    /// The method in upper case, e.g. `"GET"` (the event spells it `"get"`, as GitBook does).
    #[serde(deserialize_with = "crate::codec::method")]
    pub method: String,
    /// The full URL the caller used.
    #[serde(deserialize_with = "null_default")]
    pub url: String,
    /// The path after the installation's endpoint; always starts with `/`.
    #[serde(deserialize_with = "null_default")]
    pub path: String,
    /// The raw query string without `?`; empty when there is none.
    #[serde(deserialize_with = "null_default")]
    pub query: String,
    /// The request headers.
    #[serde(deserialize_with = "null_default")]
    pub headers: Headers,
    /// The body bytes.
    #[serde(with = "base64_body")]
    pub body: Vec<u8>,
}

impl Default for Request {
    fn default() -> Self {
        Self {
            method: "GET".to_owned(),
            url: String::new(),
            path: "/".to_owned(),
            query: String::new(),
            headers: Headers::new(),
            body: Vec::new(),
        }
    }
}

impl Request {
    /// A header's value, by case-insensitive name.
    ///
    /// ```
    /// let req = weft_sdk::Request::default().with_header("X-Signature", "sha256=ab");
    /// assert_eq!(req.header("x-signature"), Some("sha256=ab"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as UTF-8 text; 400 if it is not valid UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|err| Error::bad_request(format!("request body is not utf-8: {err}")))
    }

    /// The body parsed as JSON; 400 if it does not parse into `T`, so `?` answers the
    /// caller with a bad request.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use weft_sdk::Request;
    ///
    /// #[derive(Deserialize)]
    /// struct Item {
    ///     text: String,
    /// }
    ///
    /// let req = Request::default().with_body(r#"{"text":"hi"}"#);
    /// assert_eq!(req.json::<Item>()?.text, "hi");
    /// assert_eq!(Request::default().with_body("{").json::<Item>().err().unwrap().status(), 400);
    /// # Ok::<(), weft_sdk::Error>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::bad_request(format!("invalid json body: {err}")))
    }

    /// The first value of query parameter `name`, percent-decoded (`+` is a space).
    ///
    /// ```
    /// let req = weft_sdk::testing::fetch_request("GET", "/search?q=hello+world&page=2");
    /// assert_eq!(req.query_param("q").as_deref(), Some("hello world"));
    /// assert_eq!(req.query_param("missing"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs().into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
    }

    /// All query parameters in order, percent-decoded (`+` is a space).
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect()
    }

    /// Returns the request with header `name` set (replacing any value).
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name, value.into());
        self
    }

    /// Returns the request with this body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Returns the request with a JSON body and `content-type: application/json`.
    pub fn with_json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self> {
        let body = serde_json::to_vec(body)?;
        Ok(self.with_header("content-type", "application/json").with_body(body))
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The response a handler answers a `fetch` event with.
///
/// ```
/// use weft_sdk::Response;
///
/// let res = Response::json(&serde_json::json!({"ok": true}))?
///     .with_status(201)
///     .with_header("x-request-id", "42");
/// assert_eq!(res.status, 201);
/// assert_eq!(res.header("content-type"), Some("application/json"));
/// # Ok::<(), weft_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    #[serde(default, deserialize_with = "null_default")]
    pub headers: Headers,
    /// The body bytes.
    #[serde(default, with = "base64_body")]
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with this status.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Headers::new(), body: Vec::new() }
    }

    /// 200 with a text body and `content-type: text/plain; charset=utf-8`.
    pub fn text(body: impl Into<String>) -> Self {
        Self::new(200).with_header("content-type", "text/plain; charset=utf-8").with_body(body.into())
    }

    /// 200 with a JSON body and `content-type: application/json`; fails (500) only if
    /// `T`'s `Serialize` implementation fails.
    pub fn json<T: Serialize + ?Sized>(body: &T) -> Result<Self> {
        let body = serde_json::to_vec(body)?;
        Ok(Self::new(200).with_header("content-type", "application/json").with_body(body))
    }

    /// Returns the response with another status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Returns the response with header `name` (stored lowercase) set, replacing any value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name, value.into());
        self
    }

    /// Returns the response with this body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as UTF-8 text (for tests and logging).
    pub fn body_text(&self) -> Result<&str> {
        Ok(std::str::from_utf8(&self.body)?)
    }

    /// The body parsed as JSON (for tests).
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

/// A request the integration makes to the outside world through the host
/// (op `http.fetch`). The host applies its outbound policy (allowed hosts, timeouts, size).
///
/// ```no_run
/// use weft_sdk::http::{self, OutboundRequest};
///
/// let res = http::fetch(
///     OutboundRequest::get("https://api.example.com/items").with_header("accept", "application/json"),
/// )?;
/// let items: Vec<String> = res.json()?;
/// # Ok::<(), weft_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundRequest {
    /// The method, e.g. `"POST"`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The request headers.
    #[serde(default, deserialize_with = "null_default")]
    pub headers: Headers,
    /// The body; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "optional_body")]
    pub body: Option<Vec<u8>>,
}

mod optional_body {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(body: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match body {
            Some(bytes) => serializer.serialize_str(&crate::codec::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| crate::codec::decode(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl OutboundRequest {
    /// A request with any method.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self { method: method.into(), url: url.into(), headers: Headers::new(), body: None }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Returns the request with header `name` (stored lowercase) set, replacing any value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name, value.into());
        self
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Returns the request with `authorization: Bearer <token>`.
    #[must_use]
    pub fn with_bearer(self, token: &str) -> Self {
        self.with_header("authorization", format!("Bearer {token}"))
    }

    /// Returns the request with this body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Returns the request with a JSON body and `content-type: application/json`.
    pub fn with_json<T: Serialize + ?Sized>(self, body: &T) -> Result<Self> {
        let body = serde_json::to_vec(body)?;
        Ok(self.with_header("content-type", "application/json").with_body(body))
    }
}

/// The answer to an [`OutboundRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundResponse {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    #[serde(default, deserialize_with = "null_default")]
    pub headers: Headers,
    /// The body bytes.
    #[serde(default, with = "base64_body")]
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// An empty response with this status (for tests with [`MockHost`](crate::testing::MockHost)).
    pub fn new(status: u16) -> Self {
        Self { status, headers: Headers::new(), body: Vec::new() }
    }

    /// Returns the response with header `name` (stored lowercase) set.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        set_header(&mut self.headers, name, value.into());
        self
    }

    /// Returns the response with this body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as UTF-8 text; 502 if it is not valid UTF-8.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body).map_err(|err| Error::new(502, format!("upstream body is not utf-8: {err}")))
    }

    /// The body parsed as JSON; 502 if it does not parse into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| Error::new(502, format!("invalid json from upstream: {err}")))
    }
}

/// Sends `request` through the host (op `http.fetch`) and returns the response.
///
/// Any HTTP status is a successful fetch; check [`OutboundResponse::is_success`]. Fails
/// with status 502 when the host could not make the request (policy, network, timeout),
/// the host's code being in [`Error::kind`].
pub fn fetch(request: OutboundRequest) -> Result<OutboundResponse> {
    let value = host::call("http.fetch", json!({ "request": request }), 502)?;
    serde_json::from_value(value).map_err(|err| Error::new(502, format!("http.fetch: unexpected result: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn request_deserializes_leniently() {
        let req: Request = serde_json::from_value(json!({
            "method": "post",
            "path": "/x",
            "query": null,
            "headers": {"Content-Type": "text/plain"},
            "body": "aGk=",
            "extra": true,
        }))
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.query, "");
        assert_eq!(req.header("content-type"), Some("text/plain"));
        assert_eq!(req.text().unwrap(), "hi");
    }

    #[test]
    fn request_json_errors_are_bad_requests() {
        let req = Request::default().with_body("{not json");
        let err = req.json::<Value>().unwrap_err();
        assert_eq!(err.status(), 400);
        let err = Request::default().with_body(vec![0xff]).text().unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let req = Request { query: "q=a+b%20c&empty&x=%zz&last=%4".to_owned(), ..Request::default() };
        assert_eq!(req.query_param("q").as_deref(), Some("a b c"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("x").as_deref(), Some("%zz"));
        assert_eq!(req.query_param("last").as_deref(), Some("%4"));
        assert_eq!(req.query_param("missing"), None);
    }

    #[test]
    fn response_builders_set_status_headers_and_body() {
        let res = Response::text("hi").with_status(201).with_header("X-A", "1");
        assert_eq!(res.status, 201);
        assert_eq!(res.header("x-a"), Some("1"));
        assert_eq!(res.headers.get("x-a").map(String::as_str), Some("1"));
        assert_eq!(res.body_text().unwrap(), "hi");

        let res = Response::json(&json!({"a": 1})).unwrap();
        assert_eq!(res.header("Content-Type"), Some("application/json"));
        assert_eq!(res.body_json::<Value>().unwrap(), json!({"a": 1}));
    }

    #[test]
    fn with_header_replaces_case_insensitively() {
        let res = Response::new(204).with_header("Content-Type", "a").with_header("content-type", "b");
        assert_eq!(res.headers.len(), 1);
        assert_eq!(res.header("CONTENT-TYPE"), Some("b"));
    }

    #[test]
    fn response_serializes_body_as_base64() {
        let value = serde_json::to_value(Response::text("hi")).unwrap();
        assert_eq!(
            value,
            json!({"status": 200, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": "aGk="})
        );
    }

    #[test]
    fn outbound_request_omits_a_missing_body() {
        let value = serde_json::to_value(OutboundRequest::get("https://x.test/")).unwrap();
        assert_eq!(value, json!({"method": "GET", "url": "https://x.test/", "headers": {}}));
        let value = serde_json::to_value(OutboundRequest::post("https://x.test/").with_body("hi")).unwrap();
        assert_eq!(value["body"], "aGk=");
    }
}
