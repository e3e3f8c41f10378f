//! The settings of an application: the one contract for what create and update
//! (`POST`/`PATCH /api/http/applications…`) accept, what the store keeps in the `settings`
//! column and what the API shows.
//!
//! Field names are the Space applications reference's. Every flag is nullable as the
//! reference has it: `null` means "weft's default", which the accessor methods apply, so
//! what a client set is shown back as it set it. Lists an application keeps (UI extensions,
//! unfurl domains and patterns, required rights, ssh keys) are rows of their own, not
//! settings. Stored JSON with fields this struct does not know loads (they are dropped):
//! the API never accepted or showed such fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::credentials::EndpointCredentials;

/// Longest description.
const MAX_DESCRIPTION: usize = 1000;
/// Longest short text (picture id, e-mail, basic-auth user name).
const MAX_SHORT_TEXT: usize = 200;
/// Longest list of redirect URIs.
const MAX_REDIRECT_URIS: usize = 4000;
/// Longest `state` for the InitPayload.
const MAX_STATE: usize = 1000;
/// Longest URL.
const MAX_URL_BYTES: usize = 2000;

/// `appLevelAuth`: the one way the application's payloads are authenticated. Choosing it sets
/// the three `has…` flags (a flag given in the same body wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AppLevelAuth {
    /// No signature and no verification token.
    None,
    /// Only the (deprecated) `verificationToken` in the payload.
    VerificationToken,
    /// Only the HMAC signatures with the signing key.
    SigningKey,
    /// Only the RSA signature verifiable with the JWKS.
    PublicKeySignature,
}

impl AppLevelAuth {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "NONE" => Self::None,
            "VERIFICATION_TOKEN" => Self::VerificationToken,
            "SIGNING_KEY" => Self::SigningKey,
            "PUBLIC_KEY_SIGNATURE" => Self::PublicKeySignature,
            _ => return None,
        })
    }
}

/// What an application is set to do (see the module comment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ApplicationSettings {
    /// What the application is for; shown with it.
    pub description: Option<String>,
    /// An attachment id for its icon; stored and shown.
    pub picture_attachment_id: Option<String>,
    /// An http(s) URL of its icon; stored and shown.
    pub default_external_picture: Option<String>,
    /// E-mail for Git commit verification; only create sets it.
    pub email: Option<String>,
    /// `POST /oauth/token` with `client_credentials` (default on).
    pub client_credentials_flow_enabled: Option<bool>,
    /// The authorization-code flow of `/oauth/authorize` (default off).
    pub code_flow_enabled: Option<bool>,
    /// The redirect URIs the code flow accepts, exactly, whitespace- or comma-separated.
    #[serde(rename = "codeFlowRedirectURIs")]
    pub code_flow_redirect_uris: Option<String>,
    /// A PKCE S256 challenge is required in the code flow (default off).
    pub pkce_required: Option<bool>,
    /// Clients may leave out the client secret, and must then use PKCE (default off).
    pub public_clients_allowed: Option<bool>,
    /// The implicit flow (`response_type=token`) (default off).
    pub implicit_flow_enabled: Option<bool>,
    /// The redirect URIs the implicit flow accepts, exactly.
    #[serde(rename = "implicitFlowRedirectURIs")]
    pub implicit_flow_redirect_uris: Option<String>,
    /// Where the InitPayload, the ApplicationUninstalledPayload and webhooks without an
    /// endpoint of their own are sent.
    pub endpoint_uri: Option<String>,
    /// Whether deliveries verify the endpoint's TLS certificate (default on).
    pub endpoint_ssl_verification: Option<bool>,
    /// Payloads carry `verificationToken` (default off).
    pub has_verification_token: Option<bool>,
    /// Deliveries carry `X-Space-Signature` and the Standard Webhooks headers (default on).
    pub has_signing_key: Option<bool>,
    /// Deliveries carry `X-Space-Public-Key-Signature` (default on).
    pub has_public_key_signature: Option<bool>,
    /// The scheme last chosen with `appLevelAuth`, as given.
    pub app_level_auth: Option<AppLevelAuth>,
    /// The endpoint's basic-auth user name (also kept, sealed, with the password).
    pub basic_auth_username: Option<String>,
    /// A connected (multi-org) application: sent the InitPayload; only create sets it.
    pub connect_to_space: Option<bool>,
    /// Passed in the InitPayload; only create sets it, never shown.
    pub state: Option<String>,
    /// The message the application reported (`PATCH …/error-message`).
    pub error_message: Option<String>,
}

/// A field of a create or update body that is not what [`ApplicationSettings`] accepts; the
/// message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField(pub String);

impl ApplicationSettings {
    /// The settings of a new application before its create body is applied.
    pub fn for_new_application() -> Self {
        Self {
            client_credentials_flow_enabled: Some(true),
            code_flow_enabled: Some(false),
            implicit_flow_enabled: Some(false),
            endpoint_ssl_verification: Some(true),
            has_verification_token: Some(false),
            has_signing_key: Some(true),
            has_public_key_signature: Some(true),
            connect_to_space: Some(false),
            ..Self::default()
        }
    }

    /// Applies the settings fields of a create (`creating`) or update body, checking each
    /// one's type, length and form; endpoint secrets go to `credentials`. Keys in `skip` are
    /// the caller's own (`name`, `clientId`, …); any other unknown key is refused.
    pub fn apply(
        &mut self,
        body: &Map<String, Value>,
        skip: &[&str],
        creating: bool,
        credentials: &mut EndpointCredentials,
    ) -> Result<(), InvalidField> {
        for (key, value) in body {
            let key = key.as_str();
            if skip.contains(&key) {
                continue;
            }
            match key {
                "description" => self.description = text(key, value, MAX_DESCRIPTION)?,
                "pictureAttachmentId" => self.picture_attachment_id = text(key, value, MAX_SHORT_TEXT)?,
                "defaultExternalPicture" => self.default_external_picture = url(key, value)?,
                "clientCredentialsFlowEnabled" => self.client_credentials_flow_enabled = flag(key, value)?,
                "codeFlowEnabled" => self.code_flow_enabled = flag(key, value)?,
                "codeFlowRedirectURIs" => self.code_flow_redirect_uris = text(key, value, MAX_REDIRECT_URIS)?,
                "pkceRequired" => self.pkce_required = flag(key, value)?,
                "publicClientsAllowed" => self.public_clients_allowed = flag(key, value)?,
                "implicitFlowEnabled" => self.implicit_flow_enabled = flag(key, value)?,
                "implicitFlowRedirectURIs" => self.implicit_flow_redirect_uris = text(key, value, MAX_REDIRECT_URIS)?,
                "endpointUri" => self.endpoint_uri = url(key, value)?,
                "endpointSslVerification" => self.endpoint_ssl_verification = flag(key, value)?,
                "hasVerificationToken" => self.has_verification_token = flag(key, value)?,
                "hasSigningKey" => self.has_signing_key = flag(key, value)?,
                "hasPublicKeySignature" => self.has_public_key_signature = flag(key, value)?,
                "appLevelAuth" => {
                    self.app_level_auth = app_level_auth(key, value)?;
                    if let Some(scheme) = self.app_level_auth {
                        self.choose_scheme(scheme, body);
                    }
                }
                "sslKeystoreAuth" if value.is_null() => {}
                "sslKeystoreAuth" => {
                    return Err(InvalidField(format!(
                        "{key}: weft has no SSL keystores; leave it null (deliveries use the system's trusted roots)"
                    )));
                }
                "basicAuthUsername" => {
                    self.basic_auth_username = text(key, value, MAX_SHORT_TEXT)?;
                    credentials.set(key, value, "")?;
                }
                "basicAuthPassword" | "bearerAuthToken" => credentials.set(key, value, "")?,
                "email" if creating => self.email = text(key, value, MAX_SHORT_TEXT)?,
                "connectToSpace" if creating => self.connect_to_space = flag(key, value)?,
                "state" if creating => self.state = text(key, value, MAX_STATE)?,
                _ => return Err(InvalidField(format!("unknown field `{key}`"))),
            }
        }
        Ok(())
    }

    /// Sets the `has…` flags `scheme` stands for, except those `body` sets itself.
    fn choose_scheme(&mut self, scheme: AppLevelAuth, body: &Map<String, Value>) {
        let flags = [
            ("hasVerificationToken", &mut self.has_verification_token, AppLevelAuth::VerificationToken),
            ("hasSigningKey", &mut self.has_signing_key, AppLevelAuth::SigningKey),
            ("hasPublicKeySignature", &mut self.has_public_key_signature, AppLevelAuth::PublicKeySignature),
        ];
        for (name, flag, stands_for) in flags {
            if !body.contains_key(name) {
                *flag = Some(scheme == stands_for);
            }
        }
    }

    /// The settings as the API shows them: every field but `state`.
    pub fn shown(&self) -> Map<String, Value> {
        let Ok(Value::Object(mut fields)) = serde_json::to_value(self) else { return Map::new() };
        fields.remove("state");
        fields
    }

    /// Whether the client-credentials flow is on (default on).
    pub fn client_credentials_flow(&self) -> bool {
        self.client_credentials_flow_enabled != Some(false)
    }

    /// Whether the authorization-code flow is on (default off).
    pub fn code_flow(&self) -> bool {
        self.code_flow_enabled == Some(true)
    }

    /// Whether the implicit flow is on (default off).
    pub fn implicit_flow(&self) -> bool {
        self.implicit_flow_enabled == Some(true)
    }

    /// Whether clients may go without the client secret (default off).
    pub fn public_clients(&self) -> bool {
        self.public_clients_allowed == Some(true)
    }

    /// Whether the code flow needs PKCE: when required, or when public clients are allowed.
    pub fn needs_pkce(&self) -> bool {
        self.pkce_required == Some(true) || self.public_clients()
    }

    /// Whether deliveries verify the endpoint's certificate (default on).
    pub fn verifies_endpoint_tls(&self) -> bool {
        self.endpoint_ssl_verification != Some(false)
    }

    /// Whether payloads carry the verification token (default off).
    pub fn sends_verification_token(&self) -> bool {
        self.has_verification_token == Some(true)
    }

    /// Whether deliveries carry the HMAC signatures (default on).
    pub fn signs_with_key(&self) -> bool {
        self.has_signing_key != Some(false)
    }

    /// Whether deliveries carry the public-key signature (default on).
    pub fn signs_with_public_key(&self) -> bool {
        self.has_public_key_signature != Some(false)
    }

    /// Whether the application is connected (multi-org).
    pub fn connects_to_space(&self) -> bool {
        self.connect_to_space == Some(true)
    }
}

fn mistyped(key: &str, expected: &str) -> InvalidField {
    InvalidField(format!("{key} must be {expected} or null"))
}

fn flag(key: &str, value: &Value) -> Result<Option<bool>, InvalidField> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(on) => Ok(Some(*on)),
        _ => Err(mistyped(key, "a boolean")),
    }
}

fn text(key: &str, value: &Value, max: usize) -> Result<Option<String>, InvalidField> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.chars().count() > max => {
            Err(InvalidField(format!("{key} must be at most {max} characters")))
        }
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(mistyped(key, "a string")),
    }
}

fn url(key: &str, value: &Value) -> Result<Option<String>, InvalidField> {
    let url = text(key, value, usize::MAX)?;
    match &url {
        Some(s) if !valid_url(s) => Err(InvalidField(format!("{key} must be an http(s) URL"))),
        _ => Ok(url),
    }
}

fn app_level_auth(key: &str, value: &Value) -> Result<Option<AppLevelAuth>, InvalidField> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => AppLevelAuth::parse(s).map(Some).ok_or_else(|| {
            InvalidField(format!(
                "{key} `{s}` must be one of NONE, VERIFICATION_TOKEN, SIGNING_KEY, PUBLIC_KEY_SIGNATURE"
            ))
        }),
        _ => Err(mistyped(key, "a string")),
    }
}

/// Whether `s` is an absolute http(s) URL.
pub fn valid_url(s: &str) -> bool {
    s.len() <= MAX_URL_BYTES
        && reqwest::Url::parse(s).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn applied(body: Value) -> Result<ApplicationSettings, InvalidField> {
        let mut settings = ApplicationSettings::for_new_application();
        settings.apply(body.as_object().unwrap(), &["name"], true, &mut EndpointCredentials::default())?;
        Ok(settings)
    }

    #[test]
    fn stored_json_of_before_loads_with_its_nulls_and_unknown_fields() {
        let stored = json!({
            "hasSigningKey": null, "codeFlowEnabled": true, "appLevelAuth": "SIGNING_KEY",
            "codeFlowRedirectURIs": "https://a.example/cb", "sshKeys": [], "uiExtensions": {},
        });
        let settings: ApplicationSettings = serde_json::from_value(stored).unwrap();
        assert!(settings.signs_with_key() && settings.code_flow() && settings.client_credentials_flow());
        assert_eq!(settings.code_flow_redirect_uris.as_deref(), Some("https://a.example/cb"));
        assert_eq!(settings.app_level_auth, Some(AppLevelAuth::SigningKey));
        assert_eq!(settings.shown()["hasSigningKey"], Value::Null);
    }

    #[test]
    fn app_level_auth_sets_the_flags_the_body_leaves_out() {
        let settings = applied(json!({"appLevelAuth": "PUBLIC_KEY_SIGNATURE", "hasSigningKey": true})).unwrap();
        assert!(settings.signs_with_public_key() && settings.signs_with_key());
        assert!(!settings.sends_verification_token());
        let settings = applied(json!({"appLevelAuth": "NONE"})).unwrap();
        assert!(!settings.signs_with_public_key() && !settings.signs_with_key());
    }

    #[test]
    fn ill_typed_fields_are_refused_naming_the_field() {
        for (body, message) in [
            (json!({"codeFlowEnabled": "yes"}), "codeFlowEnabled must be a boolean or null"),
            (json!({"description": 3}), "description must be a string or null"),
            (json!({"endpointUri": "ftp://x"}), "endpointUri must be an http(s) URL"),
            (json!({"bogus": 1}), "unknown field `bogus`"),
            (json!({"bearerAuthToken": ""}), "bearerAuthToken must be a string of 1–1000 characters or null"),
        ] {
            assert_eq!(applied(body).unwrap_err().0, message);
        }
        let mut settings = ApplicationSettings::default();
        let update = json!({"state": "s"});
        let refused = settings.apply(update.as_object().unwrap(), &[], false, &mut EndpointCredentials::default());
        assert_eq!(refused.unwrap_err().0, "unknown field `state`", "state is for create only");
    }

    #[test]
    fn state_is_never_shown() {
        let settings = applied(json!({"state": "secret-ish"})).unwrap();
        assert_eq!(settings.state.as_deref(), Some("secret-ish"));
        assert!(!settings.shown().contains_key("state"));
    }
}
