//! The [`Environment`] an event runs in: API endpoint and tokens, the integration, the
//! installation (with its configuration), space/site installations and secrets.
//!
//! The host sends the environment as one JSON object (GitBook's `IntegrationEnvironment`,
//! some kilobytes with its URLs, sealed tokens and the owner organization). Most handlers
//! read one or two things from it, so it is decoded lazily: the text is kept as it came,
//! its top-level fields are located on the first read, and each field is decoded the first
//! time it is read (the installation's configuration even without the rest of the
//! installation). What is never read is never decoded.
//!
//! Decoding is lenient: every field is optional (a missing field or `null` takes its
//! default) and unknown fields are kept in `extra` maps or ignored. A field that does not
//! decode (the host never sends one) reads as its default, and a line on stderr, which the
//! host records in the event's logs, says why.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

mod index;
mod open_object;
use index::{Field, Index};
use open_object::OpenObject;

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// The context of one event, as sent by the host in the invocation's `environment`.
///
/// Read it through its methods; each part is decoded from the host's JSON on first use
/// and kept for the rest of the event.
#[derive(Clone, Default)]
pub struct Environment {
    /// The environment object's JSON text as the host sent it; empty for none.
    json: Box<str>,
    /// Where the top-level fields lie in `json`, found on the first read.
    index: OnceLock<Index>,
    api_endpoint: OnceLock<String>,
    api_tokens: OnceLock<ApiTokens>,
    integration: OnceLock<Integration>,
    installation: OnceLock<Option<Installation>>,
    space_installation: OnceLock<Option<SpaceInstallation>>,
    site_installation: OnceLock<Option<SiteInstallation>>,
    secrets: OnceLock<BTreeMap<String, String>>,
    /// The installation's configuration, read without decoding the rest of the installation.
    configuration: OnceLock<Value>,
}

impl Environment {
    /// An environment read lazily from the host's JSON text, which must hold an object
    /// (`{…}`); anything else reads as an empty environment.
    pub fn from_json(json: &str) -> Self {
        Self { json: json.into(), ..Self::default() }
    }

    /// The base URL of the host's API, e.g. `http://localhost:8080/v1`.
    pub fn api_endpoint(&self) -> &str {
        self.decoded(&self.api_endpoint, Field::ApiEndpoint).as_str()
    }

    /// Tokens to call the host's API as the integration or the installation.
    pub fn api_tokens(&self) -> &ApiTokens {
        self.decoded(&self.api_tokens, Field::ApiTokens)
    }

    /// The integration (name, version, …).
    pub fn integration(&self) -> &Integration {
        self.decoded(&self.integration, Field::Integration)
    }

    /// The organization installation this event is for, if any.
    pub fn installation(&self) -> Option<&Installation> {
        self.decoded(&self.installation, Field::Installation).as_ref()
    }

    /// The space installation this event is for, if any.
    pub fn space_installation(&self) -> Option<&SpaceInstallation> {
        self.decoded(&self.space_installation, Field::SpaceInstallation).as_ref()
    }

    /// The site installation this event is for, if any.
    pub fn site_installation(&self) -> Option<&SiteInstallation> {
        self.decoded(&self.site_installation, Field::SiteInstallation).as_ref()
    }

    /// The integration's secrets, by name.
    pub fn secrets(&self) -> &BTreeMap<String, String> {
        self.decoded(&self.secrets, Field::Secrets)
    }

    /// The installation's configuration, or `{}` when there is no installation. Only this
    /// field of the installation is decoded.
    pub fn configuration(&self) -> &Value {
        self.configuration.get_or_init(|| {
            /// Only the configuration of an installation object; the rest is skipped.
            #[derive(Deserialize)]
            struct ConfigurationOnly {
                #[serde(default)]
                configuration: Option<Value>,
            }
            self.read::<ConfigurationOnly>(Field::Installation)
                .and_then(|installation| installation.configuration)
                .filter(|configuration| !configuration.is_null())
                .unwrap_or_else(empty_object)
        })
    }

    /// The installation's configuration parsed into `T` (500 if it does not fit).
    ///
    /// In `installation_setup`, turn the error into a 400 so the install or update that
    /// carried the configuration is refused with the message:
    ///
    /// ```
    /// use serde::Deserialize;
    /// use weft_sdk::{Environment, Error};
    ///
    /// #[derive(Deserialize)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Config {
    ///     webhook_url: String,
    ///     #[serde(default)]
    ///     verbose: bool,
    /// }
    ///
    /// let env = Environment::default()
    ///     .with_configuration(serde_json::json!({"webhookUrl": "https://hooks.example.com/x"}));
    /// let config: Config = env.config()?;
    /// assert_eq!((config.webhook_url.as_str(), config.verbose), ("https://hooks.example.com/x", false));
    ///
    /// let err = Environment::default().config::<Config>().map_err(|e| Error::bad_request(e.message().to_owned()));
    /// assert!(err.err().unwrap().message().contains("missing field `webhookUrl`"));
    /// # Ok::<(), weft_sdk::Error>(())
    /// ```
    pub fn config<T: DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(self.configuration())
            .map_err(|err| Error::internal(format!("invalid installation configuration: {err}")))
    }

    /// A secret by name (set at publish, sealed at rest, given only to the module).
    ///
    /// ```
    /// use weft_sdk::Environment;
    ///
    /// let env = Environment::default().with_secret("API_KEY", "s3cret");
    /// assert_eq!(env.secret("API_KEY"), Some("s3cret"));
    /// assert_eq!(env.secret("OTHER"), None);
    /// ```
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets().get(name).map(String::as_str)
    }

    /// The installation's id, if there is an installation.
    pub fn installation_id(&self) -> Option<&str> {
        self.installation().map(|i| i.id.as_str())
    }

    /// Returns the environment with the installation's configuration set, creating an
    /// installation (id `inst_test`) if there is none. Mostly for tests.
    #[must_use]
    pub fn with_configuration(mut self, configuration: Value) -> Self {
        let mut installation = self
            .installation()
            .cloned()
            .unwrap_or_else(|| Installation { id: "inst_test".to_owned(), ..Installation::default() });
        installation.configuration = configuration.clone();
        self.installation = OnceLock::from(Some(installation));
        self.configuration = OnceLock::from(configuration);
        self
    }

    /// Returns the environment with a secret set. Mostly for tests.
    #[must_use]
    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut secrets = self.secrets().clone();
        secrets.insert(name.into(), value.into());
        self.secrets = OnceLock::from(secrets);
        self
    }

    /// The value of `field` in the host's JSON, decoded on the first call.
    fn decoded<'a, T: DeserializeOwned + Default>(&'a self, cell: &'a OnceLock<T>, field: Field) -> &'a T {
        cell.get_or_init(|| self.read(field).unwrap_or_default())
    }

    /// Decodes `field` from the host's JSON: `None` when it is absent or `null`, or does not
    /// decode (said on stderr, which the host records).
    fn read<T: DeserializeOwned>(&self, field: Field) -> Option<T> {
        let index = self.index.get_or_init(|| {
            Index::of(&self.json).unwrap_or_else(|err| {
                eprintln!("weft-sdk: the environment is not readable ({err}); it reads as empty");
                Index::default()
            })
        });
        let text = index.get(&self.json, field)?;
        serde_json::from_str::<Option<T>>(text).unwrap_or_else(|err| {
            eprintln!("weft-sdk: the environment's `{}` is not readable ({err}); it reads as absent", field.name());
            None
        })
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field("api_endpoint", &self.api_endpoint())
            .field("api_tokens", self.api_tokens())
            .field("integration", self.integration())
            .field("installation", &self.installation())
            .field("space_installation", &self.space_installation())
            .field("site_installation", &self.site_installation())
            .field("secrets", self.secrets())
            .finish()
    }
}

/// Two environments are equal when every field reads the same.
impl PartialEq for Environment {
    fn eq(&self, other: &Self) -> bool {
        self.api_endpoint() == other.api_endpoint()
            && self.api_tokens() == other.api_tokens()
            && self.integration() == other.integration()
            && self.installation() == other.installation()
            && self.space_installation() == other.space_installation()
            && self.site_installation() == other.site_installation()
            && self.secrets() == other.secrets()
    }
}

/// The fields as the host names them; absent installations are left out.
impl Serialize for Environment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(Field::ApiEndpoint.name(), self.api_endpoint())?;
        map.serialize_entry(Field::ApiTokens.name(), self.api_tokens())?;
        map.serialize_entry(Field::Integration.name(), self.integration())?;
        if let Some(installation) = self.installation() {
            map.serialize_entry(Field::Installation.name(), installation)?;
        }
        if let Some(space) = self.space_installation() {
            map.serialize_entry(Field::SpaceInstallation.name(), space)?;
        }
        if let Some(site) = self.site_installation() {
            map.serialize_entry(Field::SiteInstallation.name(), site)?;
        }
        map.serialize_entry(Field::Secrets.name(), self.secrets())?;
        map.end()
    }
}

/// From any JSON object (kept as text and read lazily like the host's).
impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            object @ Value::Object(_) => Ok(Self::from_json(&object.to_string())),
            _ => Err(serde::de::Error::custom("expected an environment object")),
        }
    }
}

/// API tokens for the host's API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiTokens {
    /// Acts as the integration itself.
    pub integration: Option<String>,
    /// Acts as the installation.
    pub installation: Option<String>,
}

/// The integration being run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Integration {
    /// Its unique name.
    pub name: String,
    /// The published version number.
    pub version: Option<u64>,
    /// Any other field the host sends.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An installation of the integration in an organization.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Installation {
    /// The installation id.
    pub id: String,
    /// Its configuration (an object; `{}` when unset).
    pub configuration: Value,
    /// External ids attached to the installation.
    pub external_ids: Vec<String>,
    /// Any other field the host sends.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for Installation {
    fn default() -> Self {
        Self { id: String::new(), configuration: empty_object(), external_ids: Vec::new(), extra: Map::new() }
    }
}

/// An installation of the integration on a space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceInstallation {
    /// The space id.
    pub space: Option<String>,
    /// Its configuration (an object; `{}` when unset).
    pub configuration: Value,
    /// Any other field the host sends.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for SpaceInstallation {
    fn default() -> Self {
        Self { space: None, configuration: empty_object(), extra: Map::new() }
    }
}

/// An installation of the integration on a site.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteInstallation {
    /// The site id.
    pub site: Option<String>,
    /// Its configuration (an object; `{}` when unset).
    pub configuration: Value,
    /// Any other field the host sends.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for SiteInstallation {
    fn default() -> Self {
        Self { site: None, configuration: empty_object(), extra: Map::new() }
    }
}

/// A missing field or `null` takes the default, as everywhere in the environment.
fn or_default<'de, T: Deserialize<'de> + Default, A: MapAccess<'de>>(map: &mut A) -> Result<T, A::Error> {
    Ok(map.next_value::<Option<T>>()?.unwrap_or_default())
}

/// A configuration: an object, `{}` when missing or `null`.
fn configuration<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Value, A::Error> {
    Ok(map.next_value::<Option<Value>>()?.unwrap_or_else(empty_object))
}

impl OpenObject for Integration {
    const EXPECTING: &'static str = "an integration object";
    const FIELDS: &'static [&'static str] = &["name", "version"];

    fn decode<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "name" => self.name = or_default(map)?,
            _ => self.version = map.next_value()?,
        }
        Ok(())
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl OpenObject for Installation {
    const EXPECTING: &'static str = "an installation object";
    const FIELDS: &'static [&'static str] = &["id", "configuration", "externalIds"];

    fn decode<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "id" => self.id = or_default(map)?,
            "configuration" => self.configuration = configuration(map)?,
            _ => self.external_ids = or_default(map)?,
        }
        Ok(())
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl OpenObject for SpaceInstallation {
    const EXPECTING: &'static str = "a space installation object";
    const FIELDS: &'static [&'static str] = &["space", "configuration"];

    fn decode<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "space" => self.space = map.next_value()?,
            _ => self.configuration = configuration(map)?,
        }
        Ok(())
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

impl OpenObject for SiteInstallation {
    const EXPECTING: &'static str = "a site installation object";
    const FIELDS: &'static [&'static str] = &["site", "configuration"];

    fn decode<'de, A: MapAccess<'de>>(&mut self, name: &str, map: &mut A) -> Result<(), A::Error> {
        match name {
            "site" => self.site = map.next_value()?,
            _ => self.configuration = configuration(map)?,
        }
        Ok(())
    }

    fn extra(&mut self) -> &mut Map<String, Value> {
        &mut self.extra
    }
}

macro_rules! deserialize_open_object {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                open_object::deserialize(deserializer)
            }
        }
    )*};
}

deserialize_open_object!(Integration, Installation, SpaceInstallation, SiteInstallation);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_environment_deserializes() {
        let env: Environment = serde_json::from_value(json!({
            "apiEndpoint": "http://localhost:8080",
            "apiTokens": {"integration": "t1", "installation": "t2"},
            "integration": {"name": "hello", "version": 3, "title": "Hello"},
            "installation": {"id": "inst_x", "configuration": {"a": 1}, "externalIds": ["e1"], "status": "active"},
            "spaceInstallation": {"space": "sp_1", "configuration": {"b": 2}},
            "siteInstallation": null,
            "secrets": {"KEY": "v"},
            "somethingNew": [1, 2],
        }))
        .unwrap();
        assert_eq!(env.api_endpoint(), "http://localhost:8080");
        assert_eq!(env.api_tokens().installation.as_deref(), Some("t2"));
        assert_eq!(env.integration().name, "hello");
        assert_eq!(env.integration().version, Some(3));
        assert_eq!(env.integration().extra["title"], "Hello");
        assert_eq!(env.installation_id(), Some("inst_x"));
        assert_eq!(env.configuration(), &json!({"a": 1}));
        assert_eq!(env.installation().unwrap().external_ids, ["e1"]);
        assert_eq!(env.installation().unwrap().extra["status"], "active");
        assert_eq!(env.space_installation().unwrap().space.as_deref(), Some("sp_1"));
        assert!(env.site_installation().is_none());
        assert_eq!(env.secret("KEY"), Some("v"));
    }

    #[test]
    fn fields_are_decoded_only_when_read() {
        // The integration is not even valid; reading the configuration never looks at it.
        let env = Environment::from_json(
            r#"{"integration":{"name":1},"installation":{"id":"i","urls":{"x":"y"},"configuration":{"a":1}}}"#,
        );
        assert_eq!(env.configuration(), &json!({"a": 1}));
        assert!(env.installation.get().is_none() && env.integration.get().is_none());
        assert_eq!(env.installation_id(), Some("i"));
        assert_eq!(env.installation().unwrap().extra["urls"], json!({"x": "y"}));
        // A field that does not decode reads as its default (and says so on stderr).
        assert_eq!(env.integration(), &Integration::default());
    }

    #[test]
    fn unreadable_environments_read_as_empty() {
        for json in [r#"{"installation":{"id":"i"}"#, r#"{"installation":{"id":"i"},"installation":{}}"#, "[]"] {
            let env = Environment::from_json(json);
            assert_eq!((env.installation_id(), env.configuration()), (None, &json!({})), "{json}");
        }
        let env = Environment::from_json(r#"{"installation":{"id":1,"configuration":{"a":1}}}"#);
        assert_eq!(env.installation(), None);
        // The configuration alone still reads: only its own field is decoded.
        assert_eq!(env.configuration(), &json!({"a": 1}));
    }

    #[test]
    fn builders_override_what_the_host_sent() {
        let env = Environment::from_json(r#"{"installation":{"id":"i","configuration":{"a":1}},"secrets":{"A":"1"}}"#)
            .with_configuration(json!({"b": 2}))
            .with_secret("B", "2");
        assert_eq!((env.installation_id(), env.configuration()), (Some("i"), &json!({"b": 2})));
        assert_eq!(env.installation().unwrap().configuration, json!({"b": 2}));
        assert_eq!((env.secret("A"), env.secret("B")), (Some("1"), Some("2")));
        let round_trip: Environment = serde_json::from_value(serde_json::to_value(&env).unwrap()).unwrap();
        assert_eq!(round_trip, env);
    }

    #[test]
    fn open_objects_keep_unmodelled_fields_and_round_trip() {
        let site = json!({"site": "site_1", "configuration": {"c": 3}, "plan": "pro", "extra": null});
        let parsed: SiteInstallation = serde_json::from_value(site.clone()).unwrap();
        assert_eq!((parsed.site.as_deref(), &parsed.configuration), (Some("site_1"), &json!({"c": 3})));
        assert_eq!(parsed.extra, *json!({"plan": "pro", "extra": null}).as_object().unwrap());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), site);

        let installation = json!({"id": "i", "configuration": {}, "externalIds": ["x"], "target": {"o": 1}});
        let parsed: Installation = serde_json::from_value(installation.clone()).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), installation);
    }

    #[test]
    fn open_objects_refuse_what_derived_structs_refuse() {
        let duplicate = serde_json::from_str::<Installation>(r#"{"id":"a","id":"b"}"#).unwrap_err();
        assert!(duplicate.to_string().contains("duplicate field `id`"), "{duplicate}");
        assert!(serde_json::from_str::<Integration>(r#"["hello", 1]"#).is_err());
        assert!(serde_json::from_str::<SpaceInstallation>(r#"{"space": 1}"#).is_err());
    }

    #[test]
    fn an_empty_or_null_environment_takes_defaults() {
        let env: Environment = serde_json::from_value(json!({})).unwrap();
        assert_eq!(env, Environment::default());
        assert_eq!(env.configuration(), &json!({}));
        let env: Environment = serde_json::from_value(json!({
            "apiEndpoint": null, "apiTokens": null, "integration": null,
            "installation": {"id": "i", "configuration": null, "externalIds": null},
            "secrets": null,
        }))
        .unwrap();
        assert_eq!(env.configuration(), &json!({}));
    }

    #[test]
    fn config_parses_into_a_typed_struct() {
        #[derive(Deserialize)]
        struct Config {
            greeting: String,
        }
        let env = Environment::default().with_configuration(json!({"greeting": "hi"}));
        assert_eq!(env.config::<Config>().unwrap().greeting, "hi");
        assert_eq!(env.installation_id(), Some("inst_test"));
        let err = Environment::default().config::<Config>().err().unwrap();
        assert_eq!(err.status(), 500);
    }
}
