//! The minimal admin API: users and their tokens, organization members with a role, and
//! an organization's spaces and sites.
//!
//! - `GET /v1/user`: who the token acts for (GitBook's `getAuthenticatedUser`, what
//!   `gitbook whoami` prints);
//! - `POST /v1/users` `{"id","name"}`, `DELETE /v1/users/{userId}` (operator); a user's
//!   tokens are in [`super::tokens`];
//! - `POST /v1/orgs/{organizationId}/members` `{"userId","role"}`, `GET` (org admins / members),
//!   `DELETE …/members/{userId}` (org admins);
//! - `POST /v1/orgs/{organizationId}/spaces` and `…/sites` `{"title","id"?}`, `GET` lists.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::page::{self, PageQuery};
use super::places::place_json;
use crate::auth::{Principal, Role};
use crate::shapes;
use crate::state::AppState;
use crate::store::{InstallationFilter, MemberRecord, PlaceKind, UserRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/user", get(authenticated_user))
        .route("/v1/users", post(create_user))
        .route("/v1/users/{userId}", delete(delete_user))
        .route("/v1/orgs/{organizationId}/members", get(list_members).post(add_member))
        .route("/v1/orgs/{organizationId}/members/{userId}", delete(remove_member))
        .route("/v1/orgs/{organizationId}/spaces", get(list_spaces).post(create_space))
        .route("/v1/orgs/{organizationId}/sites", get(list_sites).post(create_site))
}

/// Checks an id chosen by the caller: 1–64 characters of a-z, A-Z, 0-9, `-` and `_`.
fn valid_id(field: &str, id: &str) -> Result<(), ApiError> {
    let valid = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    if id.is_empty() || id.len() > 64 || !valid {
        return Err(ApiError::bad_request(format!(
            "{field} `{id}` must be 1–64 characters of a-z, A-Z, 0-9, `-` and `_`"
        )));
    }
    Ok(())
}

fn valid_title(field: &str, title: &str) -> Result<(), ApiError> {
    if title.trim().is_empty() || title.chars().count() > 100 {
        return Err(ApiError::bad_request(format!("{field} must be 1–100 characters")));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    id: String,
    name: String,
}

/// The operator, seen as a user: the admin token belongs to no user record.
const OPERATOR: &str = "weft-operator";

/// The user the token acts for: a user token's user, or the operator for the admin token.
/// Integration and installation tokens act for no user.
async fn authenticated_user(State(state): State<AppState>, principal: Principal) -> Result<Json<Value>, ApiError> {
    let user = match &principal {
        Principal::Admin => UserRecord { id: OPERATOR.to_owned(), name: "weft operator".to_owned(), created_at: 0 },
        Principal::User { id, .. } => {
            state.store.user(id).await?.ok_or_else(|| ApiError::not_found(format!("no user `{id}`")))?
        }
        Principal::Integration { .. } | Principal::Installation { .. } => {
            return Err(ApiError::not_found("this token acts for an integration, not a user"));
        }
    };
    Ok(Json(shapes::user(super::urls(&state), &user)))
}

async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_admin()?;
    valid_id("id", &body.id)?;
    valid_title("name", &body.name)?;
    let user = state
        .store
        .create_user(&body.id, body.name.trim())
        .await?
        .ok_or_else(|| ApiError::conflict(format!("user `{}` already exists", body.id)))?;
    let mut body = shapes::user(super::urls(&state), &user);
    body["name"] = json!(user.name);
    Ok((StatusCode::CREATED, Json(body)))
}

/// Deletes a user: their memberships and tokens go with them, and every token of theirs
/// fails its next request.
async fn delete_user(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(user_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    principal.require_admin()?;
    if !state.store.delete_user(&user_id).await? {
        return Err(ApiError::not_found(format!("no user `{user_id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AddMember {
    user_id: String,
    role: String,
}

fn member_json(member: &MemberRecord) -> Value {
    json!({
        "object": "member",
        "organization": member.org_id,
        "user": member.user_id,
        "role": member.role,
        "createdAt": super::timestamp(member.created_at),
    })
}

async fn existing_org(state: &AppState, org_id: &str) -> Result<(), ApiError> {
    state.store.org(org_id).await?.ok_or_else(|| ApiError::not_found(format!("no organization `{org_id}`")))?;
    Ok(())
}

async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(body): ApiJson<AddMember>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_admin(&org_id)?;
    existing_org(&state, &org_id).await?;
    if Role::parse(&body.role).is_none() {
        return Err(ApiError::bad_request(format!("role `{}` must be `admin` or `member`", body.role)));
    }
    if state.store.user(&body.user_id).await?.is_none() {
        return Err(ApiError::bad_request(format!("userId: no user `{}`", body.user_id)));
    }
    let member = state.store.set_member(&org_id, &body.user_id, &body.role).await?;
    Ok(Json(member_json(&member)))
}

/// Takes a user out of an organization: their tokens no longer reach it.
async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require_org_admin(&org_id)?;
    existing_org(&state, &org_id).await?;
    if !state.store.remove_member(&org_id, &user_id).await? {
        return Err(ApiError::not_found(format!("user `{user_id}` is not a member of `{org_id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    existing_org(&state, &org_id).await?;
    let items: Vec<Value> = state.store.members(&org_id).await?.iter().map(member_json).collect();
    let count = items.len();
    Ok(Json(json!({ "items": items, "count": count })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePlace {
    id: Option<String>,
    title: String,
}

async fn create_place(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    org_id: String,
    body: CreatePlace,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    principal.require_org_admin(&org_id)?;
    existing_org(&state, &org_id).await?;
    let prefix = match kind {
        PlaceKind::Space => "spc_",
        PlaceKind::Site => "site_",
    };
    let id = body.id.unwrap_or_else(|| crate::ids::random(prefix, 16));
    valid_id("id", &id)?;
    valid_title("title", &body.title)?;
    let place = state
        .store
        .create_place(kind, &id, &org_id, body.title.trim())
        .await?
        .ok_or_else(|| ApiError::conflict(format!("id `{id}` is taken")))?;
    // Installations that selected every space (or site) get the new one too.
    let filter = InstallationFilter { org_id: &org_id, ..Default::default() };
    let mut after = String::new();
    loop {
        let installations = state.store.find_installations(&filter, &after, 500).await?;
        let Some(last) = installations.last() else { break };
        after = last.id.clone();
        for installation in installations {
            let selection = match kind {
                PlaceKind::Space => &installation.space_selection,
                PlaceKind::Site => &installation.site_selection,
            };
            // `None`: the installation went meanwhile, and with it its place installations.
            if selection == "all" {
                state
                    .store
                    .install_on_place(kind, &installation.id, &place.id, &installation.integration, &org_id)
                    .await?;
            }
        }
    }
    Ok((StatusCode::CREATED, Json(place_json(kind, &place))))
}

async fn list_places(
    state: AppState,
    kind: PlaceKind,
    principal: Principal,
    org_id: String,
    query: PageQuery,
) -> Result<Json<Value>, ApiError> {
    principal.require_org_member(&org_id)?;
    existing_org(&state, &org_id).await?;
    let limit = query.limit()?;
    let (places, count) = state.store.places(kind, &org_id, query.cursor(), limit).await?;
    let last = places.last().map(|p| p.id.clone());
    Ok(Json(page::list(places.iter().map(|p| place_json(kind, p)).collect(), limit, last, count)))
}

async fn create_space(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreatePlace>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_place(state, PlaceKind::Space, principal, org_id, body).await
}

async fn create_site(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiJson(body): ApiJson<CreatePlace>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    create_place(state, PlaceKind::Site, principal, org_id, body).await
}

async fn list_spaces(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    list_places(state, PlaceKind::Space, principal, org_id, query).await
}

async fn list_sites(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(org_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    list_places(state, PlaceKind::Site, principal, org_id, query).await
}
