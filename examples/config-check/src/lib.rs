//! `config-check`: validates its installation configuration in `installation_setup`, so a
//! bad configuration is refused when it is saved, with the field named, instead of failing
//! later at the first event.
//!
//! ```text
//! PATCH /v1/integrations/config-check/installations/inst_x {"configuration":{"channel":"alerts",…}}
//! → 400 {"error":{"code":400,"message":"configuration rejected by the integration: channel: must start with #"}}
//! GET …/installations/inst_x/fetch → 200 {"channel":"#alerts","webhookUrl":"https://…","threshold":80}
//! ```
//!
//! The server checks the configuration's shape against the schema in `weft.toml` (types,
//! required fields); [`Config::check`] checks the rules a schema does not express.

use serde::{Deserialize, Serialize};
use weft_sdk::{Environment, Error, Handler, LifecycleEvent, Request, Response, Result};

/// The smallest and largest accepted `threshold`.
pub const THRESHOLD_RANGE: std::ops::RangeInclusive<i64> = 1..=100;

/// The installation's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// The channel alerts go to, e.g. `#alerts`.
    pub channel: String,
    /// Where alerts are POSTed.
    pub webhook_url: String,
    /// Alert when a value reaches this.
    pub threshold: i64,
}

impl Config {
    /// Reads and checks the configuration of `env`; every error is a 400 naming the field.
    ///
    /// ```
    /// use serde_json::json;
    /// use weft_sdk::Environment;
    ///
    /// let env = Environment::default().with_configuration(json!({
    ///     "channel": "alerts", "webhookUrl": "https://hooks.example.com/x", "threshold": 50,
    /// }));
    /// let err = config_check::Config::from_env(&env).unwrap_err();
    /// assert_eq!((err.status(), err.message()), (400, "channel: must start with #"));
    /// ```
    pub fn from_env(env: &Environment) -> Result<Self> {
        let config: Config = env.config().map_err(|err| Error::bad_request(err.message().to_owned()))?;
        config.check()?;
        Ok(config)
    }

    /// The rules a JSON schema does not express.
    pub fn check(&self) -> Result<()> {
        let name = self.channel.strip_prefix('#').ok_or_else(|| Error::bad_request("channel: must start with #"))?;
        if name.is_empty() || name.len() > 80 || name.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
            return Err(Error::bad_request(
                "channel: must be # and 1–80 lowercase characters without spaces, e.g. #alerts",
            ));
        }
        let rest = self
            .webhook_url
            .strip_prefix("https://")
            .ok_or_else(|| Error::bad_request("webhookUrl: must be an https:// URL"))?;
        if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) {
            return Err(Error::bad_request("webhookUrl: must name a host, e.g. https://hooks.example.com/…"));
        }
        if !THRESHOLD_RANGE.contains(&self.threshold) {
            return Err(Error::bad_request(format!(
                "threshold: must be between {} and {}, not {}",
                THRESHOLD_RANGE.start(),
                THRESHOLD_RANGE.end(),
                self.threshold
            )));
        }
        Ok(())
    }
}

/// The integration.
#[derive(Debug, Default)]
pub struct ConfigCheck;

impl Handler for ConfigCheck {
    /// `GET` answers with the (checked) configuration.
    fn fetch(&self, req: Request, env: &Environment) -> Result<Option<Response>> {
        if req.method != "GET" {
            return Ok(None);
        }
        let config = Config::from_env(env).map_err(|err| err.with_status(500))?;
        Ok(Some(Response::json(&config)?))
    }

    fn installation_setup(&self, _event: &LifecycleEvent, env: &Environment) -> Result<()> {
        let config = Config::from_env(env)?;
        log::info!("configured: alerts at {} go to {}", config.threshold, config.channel);
        Ok(())
    }
}

weft_sdk::export_handler!(ConfigCheck);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use weft_sdk::testing::{self, MockHost};

    fn good() -> Value {
        json!({"channel": "#alerts", "webhookUrl": "https://hooks.example.com/x", "threshold": 80})
    }

    fn setup(configuration: Value) -> weft_sdk::Outcome {
        let env = Environment::default().with_configuration(configuration);
        testing::run(&ConfigCheck, testing::event("installation_setup", json!({"installationId": "inst_test"})), &env)
    }

    fn with(field: &str, value: Value) -> Value {
        let mut configuration = good();
        configuration[field] = value;
        configuration
    }

    #[test]
    fn a_good_configuration_is_accepted_and_logged() {
        let host = MockHost::new();
        assert!(setup(good()).is_none());
        assert_eq!(host.log_messages(), ["configured: alerts at 80 go to #alerts"]);
    }

    #[test]
    fn each_bad_field_is_refused_with_400_naming_it() {
        let _host = MockHost::new();
        let cases = [
            (with("channel", json!("alerts")), "channel: must start with #"),
            (with("channel", json!("#")), "channel: must be # and"),
            (with("channel", json!("#Has Spaces")), "channel: must be # and"),
            (with("webhookUrl", json!("http://hooks.example.com/x")), "webhookUrl: must be an https:// URL"),
            (with("webhookUrl", json!("https:///x")), "webhookUrl: must name a host"),
            (with("threshold", json!(0)), "threshold: must be between 1 and 100, not 0"),
            (with("threshold", json!(101)), "threshold: must be between 1 and 100, not 101"),
            (json!({"channel": "#a"}), "missing field `webhookUrl`"),
        ];
        for (configuration, message) in cases {
            let err = setup(configuration.clone()).into_error().expect("refused");
            assert_eq!(err.status(), 400, "{configuration}");
            assert!(err.message().contains(message), "{configuration}: {err}");
        }
    }

    #[test]
    fn get_answers_with_the_configuration() {
        let _host = MockHost::new();
        let env = Environment::default().with_configuration(good());
        let res = testing::fetch(&ConfigCheck, testing::fetch_request("GET", "/"), &env).into_response().unwrap();
        assert_eq!(res.body_json::<Value>().unwrap(), good());
        let post = testing::fetch(&ConfigCheck, testing::fetch_request("POST", "/"), &env);
        assert!(post.is_none(), "only GET is handled");
    }
}
