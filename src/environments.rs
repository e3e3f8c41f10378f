//! The `environment` half of every invocation, encoded once and reused: GitBook's
//! `IntegrationEnvironment`, with the integration and installation built by
//! [`crate::shapes`] (what the API answers for them). The space or site installation an
//! event is about is added per event by [`with_place_installation`].
//!
//! Building it mints two sealed API tokens (an XChaCha20-Poly1305 seal and fresh randomness
//! each), opens the integration's secrets and encodes the installation's configuration: more
//! work than a small handler does with it. The encoded JSON is kept per integration and
//! installation together with the records it was built from, and reused only for records
//! equal to those (an update, or a configuration an `installation_setup` is trying before it
//! is stored, builds a new one) and for at most [`REUSED_FOR`], so that the tokens a guest
//! receives are never older than that.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crypto::SecretBox;
use crate::shapes::{self, Urls};
use crate::state::AppState;
use crate::store::{
    InstallationRecord, IntegrationRecord, OrgRecord, PlaceInstallationRecord, PlaceKind, StoreError, TokenKind,
};

/// How long one encoding (and the tokens in it) is handed out. Tokens are valid for
/// [`TEMPORARY_TOKEN_MS`](crate::auth::TEMPORARY_TOKEN_MS) from their minting.
const REUSED_FOR: Duration = Duration::from_secs(30);
/// Entries kept before the cache starts over (a bound on memory, not a tuning knob).
const MAX_ENTRIES: usize = 100_000;

/// (integration id, installation id or none for integration-level events).
type Key = (String, Option<String>);

struct Entry {
    json: Arc<str>,
    /// The records `json` was built from.
    integration: IntegrationRecord,
    installation: Option<InstallationRecord>,
    built: Instant,
}

/// Encoded environments by integration and installation.
#[derive(Default)]
pub struct EnvironmentCache {
    entries: RwLock<HashMap<Key, Entry>>,
}

impl EnvironmentCache {
    /// The encoded `environment` object for an event of `installation` (or of the
    /// integration itself).
    pub async fn get(
        &self,
        state: &AppState,
        integration: &IntegrationRecord,
        installation: Option<&InstallationRecord>,
    ) -> Result<Arc<str>, StoreError> {
        let key = (integration.id.clone(), installation.map(|i| i.id.clone()));
        if let Some(entry) = self.entries.read().expect("environment cache lock").get(&key)
            && entry.built.elapsed() < REUSED_FOR
            && entry.integration == *integration
            && entry.installation.as_ref() == installation
        {
            return Ok(entry.json.clone());
        }
        // The owner organization, as the integration object shows it; a miss only costs
        // that field's detail.
        let owner = state.store.org(&integration.org_id).await?;
        let json: Arc<str> =
            encode(&state.public_url, &state.secrets, integration, installation, owner.as_ref()).into();
        let mut entries = self.entries.write().expect("environment cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let entry = Entry {
            json: json.clone(),
            integration: integration.clone(),
            installation: installation.cloned(),
            built: Instant::now(),
        };
        entries.insert(key, entry);
        Ok(json)
    }
}

/// Encodes the environment (GitBook's `IntegrationEnvironment`) for a server reached at
/// `public_url`: `apiEndpoint`, `apiTokens`, the `integration` (owned by `owner`), the
/// `installation`, `signingSecrets` and `secrets`. Fields without a value are left out
/// rather than `null`, as GitBook's document declares them.
pub fn encode(
    public_url: &str,
    secrets: &SecretBox,
    integration: &IntegrationRecord,
    installation: Option<&InstallationRecord>,
    owner: Option<&OrgRecord>,
) -> String {
    let urls = Urls { base: public_url };
    let owner = match owner {
        Some(org) => shapes::organization(urls, org, None),
        None => json!({ "object": "organization", "id": integration.org_id }),
    };
    let mut environment = json!({
        // The API's origin, as GitBook gives `https://api.gitbook.com`: `@gitbook/api`
        // appends `/v1` itself.
        "apiEndpoint": public_url,
        "apiTokens": {
            "integration": crate::auth::sealed_token(secrets, TokenKind::Integration, &integration.id),
        },
        "integration": shapes::integration(urls, integration, owner, false),
        "signingSecrets": { "integration": secrets.signing_secret(&integration.id) },
        "secrets": integration.open_secrets(secrets),
    });
    if let Some(installation) = installation {
        environment["apiTokens"]["installation"] =
            json!(crate::auth::sealed_token(secrets, TokenKind::Installation, &installation.id));
        environment["installation"] = shapes::installation(urls, installation);
        environment["signingSecrets"]["installation"] = json!(secrets.signing_secret(&installation.id));
    }
    environment.to_string()
}

/// `environment` (encoded by [`encode`]) with the space or site installation an event is
/// about: `spaceInstallation` or `siteInstallation` (GitBook's
/// `IntegrationEnvironmentSpaceInstallation` / `…SiteInstallation`) and its signing secret.
pub fn with_place_installation(
    public_url: &str,
    secrets: &SecretBox,
    environment: &str,
    kind: PlaceKind,
    record: &PlaceInstallationRecord,
) -> String {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(environment) else {
        return environment.to_owned();
    };
    let noun = shapes::noun(kind);
    let place = shapes::place_installation(Urls { base: public_url }, kind, record, json!(record.target_id));
    fields.insert(format!("{noun}Installation"), place);
    if let Some(Value::Object(signing)) = fields.get_mut("signingSecrets") {
        let subject = format!("{}/{noun}/{}", record.installation_id, record.target_id);
        signing.insert(format!("{noun}Installation"), json!(secrets.signing_secret(&subject)));
    }
    Value::Object(fields).to_string()
}
