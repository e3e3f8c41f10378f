//! The settings of an application webhook: the one contract for what its create and update
//! (`POST`/`PATCH …/webhooks…`) accept, what the store keeps in its `settings` column and what
//! the API shows. Field names are the Space applications reference's. Endpoint credentials and
//! custom headers are secrets, sealed apart, never part of these.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::payload;
use super::settings::{InvalidField, valid_url};

/// Longest description, `payloadFields` or `payloadTemplate`.
const MAX_TEXT: usize = 10_000;
/// Most `acceptedHttpResponseCodes`.
const MAX_ACCEPTED_CODES: usize = 50;

fn on() -> bool {
    true
}

/// The webhook's own endpoint, instead of the application's `endpointUri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    /// Where its deliveries go (http or https).
    pub url: String,
    /// Whether deliveries verify the endpoint's certificate (default on); overrides the
    /// application's `endpointSslVerification`.
    #[serde(default = "on")]
    pub ssl_verification: bool,
}

/// What a webhook is set to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSettings {
    /// What it is for; shown with it.
    #[serde(default)]
    pub description: Option<String>,
    /// A disabled webhook gets no deliveries (default on).
    #[serde(default = "on")]
    pub enabled: bool,
    /// Its own endpoint, or `None` for the application's.
    #[serde(default)]
    pub endpoint: Option<WebhookEndpoint>,
    /// Statuses besides 2xx that count as delivered.
    #[serde(default)]
    pub accepted_http_response_codes: Vec<i64>,
    /// Failed deliveries are retried with backoff (default on); off, one attempt.
    #[serde(default = "on")]
    pub do_retries: bool,
    /// Comma-separated dot paths: the payload keeps only these fields of the event.
    #[serde(default)]
    pub payload_fields: Option<String>,
    /// Replaces the whole body, `{{path}}` replaced by the event's value; an alternative to
    /// `payloadFields`.
    #[serde(default)]
    pub payload_template: Option<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            description: None,
            enabled: true,
            endpoint: None,
            accepted_http_response_codes: Vec::new(),
            do_retries: true,
            payload_fields: None,
            payload_template: None,
        }
    }
}

impl WebhookSettings {
    /// The settings as the API shows them: every field (the `settings` column stores the same
    /// JSON; a field it leaves out takes its default when read).
    pub fn shown(&self) -> Map<String, Value> {
        let Ok(Value::Object(fields)) = serde_json::to_value(self) else { return Map::new() };
        fields
    }

    /// Applies the settings fields of a create or update body, checking each; keys in `skip`
    /// are the caller's own (`name`, `subscriptions`, `endpointAuth`), any other unknown key is
    /// refused.
    pub fn apply(&mut self, body: &Map<String, Value>, skip: &[&str]) -> Result<(), InvalidField> {
        for (key, value) in body {
            let key = key.as_str();
            if skip.contains(&key) {
                continue;
            }
            match key {
                "description" => self.description = text(key, value)?,
                "payloadFields" => {
                    self.payload_fields = text(key, value)?;
                    if let Some(fields) = &self.payload_fields {
                        payload::parse_fields(fields).map_err(InvalidField)?;
                    }
                }
                "payloadTemplate" => {
                    self.payload_template = text(key, value)?;
                    if let Some(template) = &self.payload_template {
                        payload::check_template(template).map_err(InvalidField)?;
                    }
                }
                "enabled" => self.enabled = flag(key, value)?,
                "doRetries" => self.do_retries = flag(key, value)?,
                "endpoint" => self.endpoint = endpoint(value)?,
                "acceptedHttpResponseCodes" => self.accepted_http_response_codes = accepted_codes(value)?,
                _ => return Err(InvalidField(format!("unknown field `{key}`"))),
            }
        }
        if self.payload_fields.is_some() && self.payload_template.is_some() {
            return Err(InvalidField(
                "payloadFields and payloadTemplate are alternatives: set one of them (and the other to null)".into(),
            ));
        }
        Ok(())
    }
}

fn text(key: &str, value: &Value) -> Result<Option<String>, InvalidField> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() <= MAX_TEXT => Ok(Some(s.clone())),
        _ => Err(InvalidField(format!("{key} must be a string of at most {MAX_TEXT} characters"))),
    }
}

fn flag(key: &str, value: &Value) -> Result<bool, InvalidField> {
    value.as_bool().ok_or_else(|| InvalidField(format!("{key} must be a boolean")))
}

fn endpoint(value: &Value) -> Result<Option<WebhookEndpoint>, InvalidField> {
    match value {
        Value::Null => Ok(None),
        Value::Object(endpoint) => {
            let url = endpoint.get("url").and_then(Value::as_str).filter(|u| valid_url(u));
            let url = url.ok_or_else(|| InvalidField("endpoint.url must be an http(s) URL".into()))?;
            let ssl_verification = endpoint.get("sslVerification").and_then(Value::as_bool).unwrap_or(true);
            Ok(Some(WebhookEndpoint { url: url.to_owned(), ssl_verification }))
        }
        _ => Err(InvalidField("endpoint must be an object with a url".into())),
    }
}

fn accepted_codes(value: &Value) -> Result<Vec<i64>, InvalidField> {
    value
        .as_array()
        .filter(|codes| codes.len() <= MAX_ACCEPTED_CODES)
        .and_then(|codes| codes.iter().map(|c| c.as_i64().filter(|c| (100..=599).contains(c))).collect())
        .ok_or_else(|| {
            InvalidField(format!(
                "acceptedHttpResponseCodes must be at most {MAX_ACCEPTED_CODES} HTTP status codes (100–599)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stored_settings_round_trip_and_missing_fields_take_their_defaults() {
        let stored = json!({"endpoint": {"url": "https://hook.example/", "sslVerification": false}});
        let settings: WebhookSettings = serde_json::from_value(stored).unwrap();
        assert!(settings.enabled && settings.do_retries);
        assert_eq!(settings.endpoint.as_ref().map(|e| e.ssl_verification), Some(false));
        assert_eq!(serde_json::from_value::<WebhookSettings>(Value::Object(settings.shown())).unwrap(), settings);
    }

    #[test]
    fn bad_fields_are_refused_naming_them() {
        for (body, message) in [
            (json!({"enabled": "yes"}), "enabled must be a boolean"),
            (json!({"endpoint": {"url": "ftp://x"}}), "endpoint.url must be an http(s) URL"),
            (json!({"acceptedHttpResponseCodes": [700]}), "acceptedHttpResponseCodes must be"),
            (json!({"payloadFields": "a", "payloadTemplate": "b"}), "alternatives"),
            (json!({"bogus": 1}), "unknown field `bogus`"),
        ] {
            let refused = WebhookSettings::default().apply(body.as_object().unwrap(), &[]).unwrap_err();
            assert!(refused.0.contains(message), "{body} → {}", refused.0);
        }
    }
}
