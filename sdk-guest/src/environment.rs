//! The [`Environment`] an event runs in: API endpoint and tokens, the integration, the
//! installation (with its configuration), space/site installations and secrets.
//!
//! Deserialization is lenient: every field is optional (a missing field or `null` takes
//! its default) and unknown fields are kept in `extra` maps or ignored.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{DeserializeOwned, MapAccess};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::codec::null_default;
use crate::{Error, Result};

mod open_object;
use open_object::OpenObject;

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// The context of one event, as sent by the host in the invocation's `environment`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Environment {
    /// The base URL of the host's API, e.g. `http://localhost:8080`.
    #[serde(deserialize_with = "null_default")]
    pub api_endpoint: String,
    /// Tokens to call the host's API as the integration or the installation.
    #[serde(deserialize_with = "null_default")]
    pub api_tokens: ApiTokens,
    /// The integration (name, version, …).
    #[serde(deserialize_with = "null_default")]
    pub integration: Integration,
    /// The organization installation this event is for, if any.
    pub installation: Option<Installation>,
    /// The space installation this event is for, if any.
    pub space_installation: Option<SpaceInstallation>,
    /// The site installation this event is for, if any.
    pub site_installation: Option<SiteInstallation>,
    /// The integration's secrets, by name.
    #[serde(deserialize_with = "null_default")]
    pub secrets: BTreeMap<String, String>,
}

impl Environment {
    /// The installation's configuration, or `{}` when there is no installation.
    pub fn configuration(&self) -> &Value {
        static EMPTY: OnceLock<Value> = OnceLock::new();
        match &self.installation {
            Some(installation) => &installation.configuration,
            None => EMPTY.get_or_init(empty_object),
        }
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
        self.secrets.get(name).map(String::as_str)
    }

    /// The installation's id, if there is an installation.
    pub fn installation_id(&self) -> Option<&str> {
        self.installation.as_ref().map(|i| i.id.as_str())
    }

    /// Returns the environment with the installation's configuration set, creating an
    /// installation (id `inst_test`) if there is none. Mostly for tests.
    #[must_use]
    pub fn with_configuration(mut self, configuration: Value) -> Self {
        self.installation
            .get_or_insert_with(|| Installation { id: "inst_test".to_owned(), ..Installation::default() })
            .configuration = configuration;
        self
    }

    /// Returns the environment with a secret set. Mostly for tests.
    #[must_use]
    pub fn with_secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
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
        assert_eq!(env.api_endpoint, "http://localhost:8080");
        assert_eq!(env.api_tokens.installation.as_deref(), Some("t2"));
        assert_eq!(env.integration.name, "hello");
        assert_eq!(env.integration.version, Some(3));
        assert_eq!(env.integration.extra["title"], "Hello");
        assert_eq!(env.installation_id(), Some("inst_x"));
        assert_eq!(env.configuration(), &json!({"a": 1}));
        assert_eq!(env.installation.as_ref().unwrap().external_ids, ["e1"]);
        assert_eq!(env.installation.as_ref().unwrap().extra["status"], "active");
        assert_eq!(env.space_installation.as_ref().unwrap().space.as_deref(), Some("sp_1"));
        assert!(env.site_installation.is_none());
        assert_eq!(env.secret("KEY"), Some("v"));
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
