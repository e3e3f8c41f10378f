//! `/v1/integrations/{integrationName}`: publish and read integrations.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, integration_name};
use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{IntegrationRecord, NewVersion};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/integrations/{integrationName}", get(show).post(publish))
}

/// Who may see and install an integration.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Visibility {
    /// Only its own organization.
    #[default]
    Private,
    /// Anyone who knows its name.
    Unlisted,
    /// Listed for everyone.
    Public,
}

/// Where an integration may be installed.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Target {
    #[default]
    All,
    Organization,
    Space,
    Site,
}

/// The publish body. Unknown fields are refused so a typo is named, not ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PublishBody {
    title: String,
    description: String,
    script: String,
    organization: String,
    icon: Option<String>,
    summary: Option<String>,
    #[serde(default)]
    preview_images: Vec<String>,
    #[serde(default)]
    visibility: Visibility,
    #[serde(default)]
    target: Target,
    content_security_policy: Option<Value>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    blocks: Vec<Value>,
    configurations: Option<Value>,
    #[serde(default)]
    external_links: Vec<Value>,
}

impl PublishBody {
    /// Checks the reference's limits; each error names its field.
    fn validate(&self) -> Result<(), ApiError> {
        let chars = |s: &str| s.chars().count();
        if !(2..=30).contains(&chars(&self.title)) {
            return Err(ApiError::bad_request("title must be 2–30 characters"));
        }
        if chars(&self.description) > 100 {
            return Err(ApiError::bad_request("description must be at most 100 characters"));
        }
        if self.summary.as_deref().is_some_and(|s| chars(s) > 2048) {
            return Err(ApiError::bad_request("summary must be at most 2048 characters"));
        }
        if self.preview_images.len() > 3 {
            return Err(ApiError::bad_request("previewImages must hold at most 3 images"));
        }
        for (i, image) in self.preview_images.iter().enumerate() {
            BASE64
                .decode(image)
                .map_err(|e| ApiError::bad_request(format!("previewImages[{i}] is not base64: {e}")))?;
        }
        if let Some(icon) = &self.icon {
            BASE64.decode(icon).map_err(|e| ApiError::bad_request(format!("icon is not base64: {e}")))?;
        }
        match &self.content_security_policy {
            None | Some(Value::String(_)) | Some(Value::Object(_)) => {}
            Some(_) => return Err(ApiError::bad_request("contentSecurityPolicy must be a string or an object")),
        }
        if self.configurations.as_ref().is_some_and(|c| !c.is_object()) {
            return Err(ApiError::bad_request("configurations must be an object"));
        }
        if let Some(scope) = self.scopes.iter().find(|s| s.is_empty() || s.len() > 100) {
            return Err(ApiError::bad_request(format!("scopes: `{scope}` must be 1–100 characters")));
        }
        Ok(())
    }

    /// Everything but the script, as stored.
    fn manifest(&self, script_bytes: usize) -> Value {
        json!({
            "title": self.title,
            "description": self.description,
            "icon": self.icon,
            "summary": self.summary,
            "previewImages": self.preview_images,
            "contentSecurityPolicy": self.content_security_policy,
            "scopes": self.scopes,
            "categories": self.categories,
            "blocks": self.blocks,
            "configurations": self.configurations,
            "externalLinks": self.external_links,
            "scriptBytes": script_bytes,
        })
    }
}

/// The JSON form of an integration: its manifest, never its script.
pub fn integration_json(integration: &IntegrationRecord) -> Value {
    let mut body = json!({
        "object": "integration",
        "name": integration.name,
        "organization": integration.org_id,
        "visibility": integration.visibility,
        "target": integration.target,
        "version": integration.current_version,
        "createdAt": super::timestamp(integration.created_at),
        "updatedAt": super::timestamp(integration.updated_at),
    });
    if let (Some(fields), Some(manifest)) = (body.as_object_mut(), integration.manifest.as_object()) {
        for (key, value) in manifest.iter().filter(|(key, _)| key.as_str() != "scriptBytes") {
            fields.insert(key.clone(), value.clone());
        }
    }
    body
}

async fn publish(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    integration_name(&name)?;
    body.validate()?;
    let wasm =
        BASE64.decode(body.script.trim()).map_err(|e| ApiError::bad_request(format!("script is not base64: {e}")))?;
    if state.store.org(&body.organization).await?.is_none() {
        return Err(ApiError::bad_request(format!("organization `{}` does not exist", body.organization)));
    }
    let compiled = state
        .modules
        .compile(Arc::new(wasm.clone()))
        .await
        .map_err(|e| ApiError::bad_request(format!("script: {e}")))?;
    let visibility = serde_json::to_value(body.visibility).expect("enum encodes");
    let target = serde_json::to_value(body.target).expect("enum encodes");
    let manifest = body.manifest(wasm.len());
    let integration = state
        .store
        .publish_version(NewVersion {
            name: &name,
            org_id: &body.organization,
            visibility: visibility.as_str().unwrap_or("private"),
            target: target.as_str().unwrap_or("all"),
            manifest: &manifest,
            wasm: &wasm,
            artifact: &compiled.artifact,
            sha256: &compiled.sha256,
        })
        .await?
        .ok_or_else(|| ApiError::conflict(format!("integration `{name}` belongs to another organization")))?;
    state.modules.insert(&name, integration.current_version, compiled.module);
    tracing::info!(integration = %name, version = integration.current_version, "published");
    Ok(Json(integration_json(&integration)))
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_admin()?;
    let integration = find(&state, &name).await?;
    Ok(Json(integration_json(&integration)))
}

/// The integration named `name`, or 404.
pub async fn find(state: &AppState, name: &str) -> Result<IntegrationRecord, ApiError> {
    integration_name(name)?;
    state.store.integration(name).await?.ok_or_else(|| ApiError::not_found(format!("no integration `{name}`")))
}
