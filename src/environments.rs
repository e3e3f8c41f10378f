//! The `environment` half of every invocation, encoded once and reused.
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

use serde_json::json;

use crate::crypto::SecretBox;
use crate::state::AppState;
use crate::store::{InstallationRecord, IntegrationRecord, TokenKind};

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
    pub fn get(
        &self,
        state: &AppState,
        integration: &IntegrationRecord,
        installation: Option<&InstallationRecord>,
    ) -> Arc<str> {
        let key = (integration.id.clone(), installation.map(|i| i.id.clone()));
        if let Some(entry) = self.entries.read().expect("environment cache lock").get(&key)
            && entry.built.elapsed() < REUSED_FOR
            && entry.integration == *integration
            && entry.installation.as_ref() == installation
        {
            return entry.json.clone();
        }
        let json: Arc<str> = encode(&state.public_url, &state.secrets, integration, installation).into();
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
        json
    }
}

/// Encodes the environment the guest ABI describes (apiEndpoint, apiTokens, integration,
/// installation, secrets) for a server reached at `public_url`.
pub fn encode(
    public_url: &str,
    secrets: &SecretBox,
    integration: &IntegrationRecord,
    installation: Option<&InstallationRecord>,
) -> String {
    json!({
        "apiEndpoint": format!("{public_url}/v1"),
        "apiTokens": {
            "integration": crate::auth::sealed_token(secrets, TokenKind::Integration, &integration.id),
            "installation": installation.map(|installation| {
                crate::auth::sealed_token(secrets, TokenKind::Installation, &installation.id)
            }),
        },
        "integration": {
            "name": integration.name,
            "version": integration.current_version,
            "organization": integration.org_id,
        },
        "installation": installation.map(|installation| json!({
            "id": installation.id,
            "status": installation.status,
            "configuration": installation.configuration,
            "externalIds": installation.external_ids,
            "target": { "organization": installation.org_id },
        })),
        "spaceInstallation": null,
        "siteInstallation": null,
        "secrets": integration.open_secrets(secrets),
    })
    .to_string()
}
