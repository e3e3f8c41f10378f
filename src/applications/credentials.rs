//! Endpoint credentials: what weft puts in `Authorization` when it calls an application's
//! endpoint, or a webhook's own. The one contract for the fields an application's create and
//! update (`basicAuthUsername`, `basicAuthPassword`, `bearerAuthToken`) and a webhook's
//! `endpointAuth` accept, what is sealed in the store and what a delivery sends.
//!
//! They are secrets: sealed with the server key, never part of an application's or webhook's
//! JSON (which shows only `hasBasicAuthPassword`/`hasBearerAuthToken`); the reference's own
//! `…/bearer-token` endpoints show the token to whoever may view secrets.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::settings::InvalidField;
use crate::crypto::{OpenError, SecretBox};

/// Longest credential, in bytes.
const MAX_BYTES: usize = 1000;

/// The credentials an endpoint is called with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EndpointCredentials {
    /// Basic auth's user name (sent with [`Self::basic_auth_password`]).
    pub basic_auth_username: Option<String>,
    /// Basic auth's password.
    pub basic_auth_password: Option<String>,
    /// A bearer token; when set, it is sent instead of basic auth.
    pub bearer_auth_token: Option<String>,
}

impl EndpointCredentials {
    /// The names of the fields, as bodies give them.
    pub const FIELDS: [&'static str; 3] = ["basicAuthUsername", "basicAuthPassword", "bearerAuthToken"];

    /// Sets the field a body names to `value` (`null` clears it), checking it is a string of
    /// 1–1000 bytes; `prefix` goes before the field's name in the error (`endpointAuth.`).
    pub fn set(&mut self, field: &str, value: &Value, prefix: &str) -> Result<(), InvalidField> {
        let value = match value {
            Value::Null => None,
            Value::String(s) if !s.is_empty() && s.len() <= MAX_BYTES => Some(s.clone()),
            _ => {
                return Err(InvalidField(format!(
                    "{prefix}{field} must be a string of 1–{MAX_BYTES} characters or null"
                )));
            }
        };
        match field {
            "basicAuthUsername" => self.basic_auth_username = value,
            "basicAuthPassword" => self.basic_auth_password = value,
            "bearerAuthToken" => self.bearer_auth_token = value,
            _ => {
                return Err(InvalidField(format!(
                    "unknown field `{prefix}{field}` (fields: {})",
                    Self::FIELDS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Whether no credential is set.
    pub fn is_empty(&self) -> bool {
        self.basic_auth_username.is_none() && self.basic_auth_password.is_none() && self.bearer_auth_token.is_none()
    }

    /// `Authorization` for these credentials: the bearer token first, else basic auth when
    /// both its halves are set.
    pub fn authorization_header(&self) -> Option<String> {
        if let Some(token) = &self.bearer_auth_token {
            return Some(format!("Bearer {token}"));
        }
        let (user, password) = (self.basic_auth_username.as_ref()?, self.basic_auth_password.as_ref()?);
        Some(format!("Basic {}", BASE64.encode(format!("{user}:{password}"))))
    }

    /// The credentials sealed in `sealed` (none when there is nothing sealed).
    pub fn open(secrets: &SecretBox, sealed: Option<&str>) -> Result<Self, OpenError> {
        let Some(sealed) = sealed else { return Ok(Self::default()) };
        serde_json::from_slice(&secrets.open(sealed)?).map_err(|_| OpenError)
    }

    /// The credentials sealed for the store; `None` when none is set.
    pub fn seal(&self, secrets: &SecretBox) -> Option<String> {
        let json = serde_json::to_vec(self).expect("plain strings serialize");
        (!self.is_empty()).then(|| secrets.seal(&json))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_bearer_token_goes_first_and_basic_auth_needs_both_halves() {
        let mut credentials = EndpointCredentials::default();
        credentials.set("basicAuthUsername", &json!("ada"), "").unwrap();
        assert_eq!(credentials.authorization_header(), None, "a user name alone");
        credentials.set("basicAuthPassword", &json!("pw"), "").unwrap();
        assert_eq!(credentials.authorization_header().as_deref(), Some("Basic YWRhOnB3"));
        credentials.set("bearerAuthToken", &json!("t"), "").unwrap();
        assert_eq!(credentials.authorization_header().as_deref(), Some("Bearer t"));
        credentials.set("bearerAuthToken", &Value::Null, "").unwrap();
        assert_eq!(credentials.authorization_header().as_deref(), Some("Basic YWRhOnB3"), "null clears");
    }

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        let mut credentials = EndpointCredentials::default();
        let refused = credentials.set("bearerAuthToken", &json!(""), "endpointAuth.").unwrap_err();
        assert_eq!(refused.0, "endpointAuth.bearerAuthToken must be a string of 1–1000 characters or null");
        let refused = credentials.set("password", &json!("x"), "endpointAuth.").unwrap_err();
        assert!(refused.0.starts_with("unknown field `endpointAuth.password`"), "{}", refused.0);
    }

    #[test]
    fn sealed_credentials_open_to_what_was_sealed() {
        let secrets = SecretBox::new([7; 32]);
        let mut credentials = EndpointCredentials::default();
        assert_eq!(credentials.seal(&secrets), None, "nothing to seal");
        credentials.set("bearerAuthToken", &json!("t"), "").unwrap();
        let sealed = credentials.seal(&secrets).unwrap();
        assert_eq!(EndpointCredentials::open(&secrets, Some(&sealed)).unwrap(), credentials);
        assert_eq!(EndpointCredentials::open(&secrets, None).unwrap(), EndpointCredentials::default());
    }
}
