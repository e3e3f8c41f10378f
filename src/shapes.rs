//! GitBook's published object shapes, built from weft's records: `Organization`, `User`,
//! `Integration`, `IntegrationInstallation`, `IntegrationSpaceInstallation` /
//! `IntegrationSiteInstallation`, `IntegrationEvent` — as `@gitbook/api`'s OpenAPI document
//! declares them. The `/v1` answers and the environment a module receives are built here and
//! nowhere else, so the two cannot disagree.
//!
//! Fields GitBook requires that mean nothing in weft get an honest constant, listed in the
//! README ("GitBook fidelity"): an integration is never `verified`, an organization's `plan`
//! is `free` with no trial, merge rules are `none`. weft's own extra fields stay where the
//! schemas allow them (`object`, `organization`, `createdAt`, …).

use serde_json::{Value, json};

use crate::auth::Role;
use crate::store::{
    EventRecord, InstallationRecord, IntegrationRecord, OrgRecord, PlaceInstallationRecord, PlaceKind, UserRecord,
};

/// Formats a millisecond timestamp as RFC 3339, the API's date format.
pub fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Where things are, from the server's public URL.
#[derive(Debug, Clone, Copy)]
pub struct Urls<'a> {
    /// The server's public URL, without a trailing slash.
    pub base: &'a str,
}

impl Urls<'_> {
    fn api(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base)
    }

    /// The web console's page for `path` (`urls.app` of every object).
    fn app(&self, path: &str) -> String {
        format!("{}/console{path}", self.base)
    }

    /// The public endpoint of an installation: third parties send requests here, and the
    /// integration answers them as `fetch` events.
    pub fn installation_endpoint(&self, integration: &str, installation_id: &str) -> String {
        self.api(&format!("/integrations/{integration}/installations/{installation_id}/fetch"))
    }

    /// The integration-level public endpoint (`fetch` events without an installation).
    pub fn integration_endpoint(&self, integration: &str) -> String {
        self.api(&format!("/integrations/{integration}/fetch"))
    }
}

/// GitBook's `Organization`, as seen by a caller with `role` in it (`None`: not a member,
/// e.g. the owner of a public integration seen from elsewhere).
pub fn organization(urls: Urls<'_>, org: &OrgRecord, role: Option<Role>) -> Value {
    let member = role.is_some();
    let admin = role == Some(Role::Admin);
    json!({
        "object": "organization",
        "id": org.id,
        "title": org.title,
        "createdAt": timestamp(org.created_at),
        "type": "business",
        "emailDomains": [],
        "inviteLinks": false,
        "plan": "free",
        "mergeRules": { "type": "none" },
        "trial": { "status": "notapplicable", "count": 0 },
        "urls": { "location": urls.api(&format!("/orgs/{}", org.id)), "app": urls.app(&format!("/orgs/{}", org.id)) },
        "permissions": {
            "view": member,
            "access": member,
            "admin": admin,
            "ownTeam": false,
            "createContent": admin,
            "createOpenAPISpec": false,
            "viewBilling": false,
            "listMembers": member,
            "listTeams": false,
            "listIntegrations": member,
            "listInstallations": member,
            "installIntegration": admin,
        },
    })
}

/// GitBook's `User`.
pub fn user(urls: Urls<'_>, user: &UserRecord) -> Value {
    json!({
        "object": "user",
        "id": user.id,
        "displayName": user.name,
        "createdAt": timestamp(user.created_at),
        "urls": { "location": urls.api(&format!("/users/{}", user.id)) },
    })
}

/// GitBook's `Integration`: the manifest's fields (never the script), its `owner`
/// organization (as [`organization`] builds it) and whether the caller administers it.
pub fn integration(urls: Urls<'_>, integration: &IntegrationRecord, owner: Value, admin: bool) -> Value {
    let manifest = &integration.manifest;
    let endpoint = urls.integration_endpoint(&integration.name);
    let mut body = json!({
        "object": "integration",
        "name": integration.name,
        "version": integration.current_version,
        "title": manifest["title"],
        "description": manifest["description"],
        "visibility": integration.visibility,
        "target": integration.target,
        "scopes": manifest.get("scopes").cloned().unwrap_or_else(|| json!([])),
        "categories": manifest.get("categories").cloned().unwrap_or_else(|| json!([])),
        "previewImages": manifest.get("previewImages").cloned().unwrap_or_else(|| json!([])),
        "externalLinks": manifest.get("externalLinks").cloned().unwrap_or_else(|| json!([])),
        "verified": false,
        "owner": owner,
        "organization": integration.org_id,
        "permissions": { "admin": admin },
        "createdAt": timestamp(integration.created_at),
        "updatedAt": timestamp(integration.updated_at),
        "urls": {
            "location": urls.api(&format!("/integrations/{}", integration.name)),
            "app": urls.app(&format!("/integrations/{}", integration.name)),
            "assets": urls.api(&format!("/integrations/{}", integration.name)),
            "publicEndpoint": endpoint,
            "publicContentEndpoint": endpoint,
        },
    });
    let fields = body.as_object_mut().expect("an object");
    // Every other published field as the publisher sent it (summary, blocks, configurations,
    // contentSecurityPolicy, …); weft's bookkeeping fields stay out, and so do fields the
    // publisher left out (stored as null; GitBook's schemas have no null for them).
    for (key, value) in manifest.as_object().into_iter().flatten() {
        if !value.is_null()
            && !fields.contains_key(key)
            && !matches!(key.as_str(), "scriptBytes" | "organization" | "script")
        {
            fields.insert(key.clone(), value.clone());
        }
    }
    body
}

/// GitBook's `IntegrationInstallation` of an organization.
pub fn installation(urls: Urls<'_>, installation: &InstallationRecord) -> Value {
    let endpoint = urls.installation_endpoint(&installation.integration, &installation.id);
    let path = format!("/integrations/{}/installations/{}", installation.integration, installation.id);
    json!({
        "object": "integration-installation",
        "id": installation.id,
        "integration": installation.integration,
        "target": { "organization": installation.org_id },
        "status": installation.status,
        "configuration": installation.configuration,
        "externalIds": installation.external_ids,
        "space_selection": installation.space_selection,
        "site_selection": installation.site_selection,
        "spaces": installation.spaces,
        "urls": {
            "location": urls.api(&path),
            "app": urls.app(&path),
            "publicEndpoint": endpoint,
            "publicContentEndpoint": endpoint,
        },
        "createdAt": timestamp(installation.created_at),
        "updatedAt": timestamp(installation.updated_at),
    })
}

/// The singular noun of a place kind, as GitBook's fields spell it (`space`, `site`).
pub fn noun(kind: PlaceKind) -> &'static str {
    match kind {
        PlaceKind::Space => "space",
        PlaceKind::Site => "site",
    }
}

/// GitBook's `IntegrationSpaceInstallation` or `IntegrationSiteInstallation`; `place` is the
/// space or site: its id, or the whole object when the caller asked for `extended`.
pub fn place_installation(urls: Urls<'_>, kind: PlaceKind, record: &PlaceInstallationRecord, place: Value) -> Value {
    let endpoint = urls.installation_endpoint(&record.integration, &record.installation_id);
    let path = format!(
        "/integrations/{}/installations/{}/{}s/{}",
        record.integration,
        record.installation_id,
        noun(kind),
        record.target_id
    );
    json!({
        "object": format!("integration-{}-installation", noun(kind)),
        "integration": record.integration,
        "installation": record.installation_id,
        noun(kind): place,
        "status": record.status,
        "configuration": record.configuration,
        "externalIds": record.external_ids,
        "urls": { "location": urls.api(&path), "publicEndpoint": endpoint, "publicContentEndpoint": endpoint },
        "createdAt": timestamp(record.created_at),
        "updatedAt": timestamp(record.updated_at),
    })
}

/// The `installation_setup` event GitBook sends when an integration is installed on an
/// organization or its installation changes; `previous` is the installation before a change.
pub fn installation_setup_event(installation: &InstallationRecord, previous: Option<&InstallationRecord>) -> Value {
    let mut event = json!({
        "type": "installation_setup",
        "installationId": installation.id,
        "status": installation.status,
    });
    if let Some(previous) = previous {
        event["previous"] = json!({ "status": previous.status, "configuration": previous.configuration });
    }
    event
}

/// The `installation_deleted` event, with the configuration the installation had.
pub fn installation_deleted_event(installation: &InstallationRecord) -> Value {
    json!({
        "type": "installation_deleted",
        "installationId": installation.id,
        "previous": { "configuration": installation.configuration },
    })
}

/// `space_installation_setup` or `site_installation_setup`: installed on a space or site, or
/// its installation there changed (`previous` is how it was).
pub fn place_installation_setup_event(
    kind: PlaceKind,
    record: &PlaceInstallationRecord,
    previous: Option<&PlaceInstallationRecord>,
) -> Value {
    let noun = noun(kind);
    let mut event = json!({
        "type": format!("{noun}_installation_setup"),
        "installationId": record.installation_id,
        format!("{noun}Id"): record.target_id,
        "status": record.status,
    });
    if let Some(previous) = previous {
        event["previous"] = json!({ "status": previous.status, "configuration": previous.configuration });
    }
    event
}

/// `space_installation_deleted` or `site_installation_deleted`, with the configuration the
/// space's or site's installation had.
pub fn place_installation_deleted_event(kind: PlaceKind, record: &PlaceInstallationRecord) -> Value {
    let noun = noun(kind);
    json!({
        "type": format!("{noun}_installation_deleted"),
        "installationId": record.installation_id,
        format!("{noun}Id"): record.target_id,
        "previous": { "configuration": record.configuration },
    })
}

/// GitBook's `IntegrationEvent`: the event as the module received it (`payload`) and whether
/// it succeeded (`status` is `success` or `failed`; a failure no retry follows is `failed`
/// with `deadLetter: true`). weft adds what an author debugging it needs: `type`,
/// `duration` (ms), the fetch `response` status and the failure's `error` kind and message.
pub fn integration_event(event: &EventRecord) -> Value {
    let payload = event
        .payload
        .as_deref()
        .and_then(|payload| serde_json::from_str::<Value>(payload).ok())
        // Recorded before payloads were kept: what is known of it.
        .unwrap_or_else(|| json!({ "eventId": event.id, "type": event.event_type }));
    let mut body = json!({
        "object": "integration-event",
        "id": event.id,
        "integrationId": event.integration_id,
        "integration": event.integration,
        "createdAt": timestamp(event.created_at),
        "payload": payload,
        "status": if event.status == "success" { "success" } else { "failed" },
        "deadLetter": event.status == "dead",
        "type": event.event_type,
        "duration": event.duration_us as f64 / 1000.0,
    });
    if let Some(installation) = &event.installation_id {
        body["installationId"] = json!(installation);
    }
    if let Some(status) = event.response_status {
        body["response"] = json!({ "status": status });
    }
    if let Some(kind) = &event.error_kind {
        body["error"] = json!({ "kind": kind, "message": event.error_message });
    }
    body
}

/// An event with its trace, as `GET …/events/{eventId}` answers it:
/// `{"event": IntegrationEvent, "trace": {"logs": [{level, message, timestamp}]}}`.
pub fn integration_event_with_trace(event: &EventRecord) -> Value {
    // Stored as the runtime wrote them; shown with RFC 3339 timestamps.
    let logs: Vec<Value> = serde_json::from_str::<Vec<Value>>(&event.logs)
        .unwrap_or_default()
        .into_iter()
        .map(|mut line| {
            if let Some(ms) = line["timestamp"].as_i64() {
                line["timestamp"] = json!(timestamp(ms));
            }
            line
        })
        .collect();
    json!({ "event": integration_event(event), "trace": { "logs": logs } })
}
