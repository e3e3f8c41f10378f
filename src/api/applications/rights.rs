//! The rights of the applications API and who holds them.
//!
//! Each endpoint declares the [`Right`] it needs (the reference's "Rights, that may be
//! checked"); [`check`] decides for a [`Caller`] and an application:
//!
//! - the operator holds every right;
//! - a user holds every right on the applications of organizations they administer and on
//!   applications they own (created without an organization), and `Applications.View` on those
//!   of organizations they are a member of;
//! - an application acting as itself holds `Applications.View` and `Applications.Update` on
//!   itself, and any other right the operator or an org admin GRANTED it in the `global`
//!   context (`PATCH …/authorizations/authorized-rights`); never anything on another
//!   application;
//! - a user token issued to an application (OAuth code or implicit flow) holds what its user
//!   holds.
//!
//! Every token also carries a scope (`**` for everything, else space-separated right codes):
//! a right outside it is refused like a missing one. A refusal is 403 naming the right.

use std::collections::BTreeMap;

use super::{Caller, SpaceError, SpaceResult};
use crate::auth::Role;
use crate::store::ApplicationRecord;

/// A right of the applications API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Create applications.
    Create,
    /// View applications.
    View,
    /// Update applications.
    Update,
    /// Delete applications.
    Delete,
    /// View application secrets (client secret, signing keys, tokens, custom headers).
    ViewSecrets,
    /// Provide external unfurls as attachments (the unfurl queue).
    ProvideUnfurls,
    /// Authorize domains and patterns for app-powered previews.
    AuthorizeUnfurls,
    /// Grant permissions to other members (authorize rights, UI for everybody).
    GrantPermissions,
}

impl Right {
    /// Its code, as scopes and authorizations name it.
    pub fn code(self) -> &'static str {
        match self {
            Right::Create => "Applications.Create",
            Right::View => "Applications.View",
            Right::Update => "Applications.Update",
            Right::Delete => "Applications.Delete",
            Right::ViewSecrets => "Applications.ViewSecrets",
            Right::ProvideUnfurls => "Unfurls.Provide",
            Right::AuthorizeUnfurls => "Unfurls.Authorize",
            Right::GrantPermissions => "Permissions.Grant",
        }
    }

    /// The reference's name for it.
    pub fn title(self) -> &'static str {
        match self {
            Right::Create => "Create applications",
            Right::View => "View applications",
            Right::Update => "Update applications",
            Right::Delete => "Delete applications",
            Right::ViewSecrets => "View application secrets",
            Right::ProvideUnfurls => "Provide external unfurls as attachments",
            Right::AuthorizeUnfurls => "Authorize domains and patterns for app-powered previews",
            Right::GrantPermissions => "Grant permissions to other members",
        }
    }
}

fn missing(right: Right) -> SpaceError {
    SpaceError::forbidden(format!("missing right `{}` ({})", right.code(), right.title()))
}

/// What a user may do on `app`, from their organization roles and ownership.
fn user_holds(user_id: &str, orgs: &BTreeMap<String, Role>, app: &ApplicationRecord, right: Right) -> bool {
    let owner = app.owner_id.as_deref() == Some(user_id) && app.org_id.is_none();
    match app.org_id.as_deref().and_then(|org| orgs.get(org)) {
        _ if owner => true,
        Some(Role::Admin) => true,
        Some(Role::Member) => right == Right::View,
        None => false,
    }
}

/// Whether an application acting as itself needs `right` granted (in the `global` context) to
/// hold it: every right but `View` and `Update`, which it holds on itself.
pub fn needs_grant(caller: &Caller, right: Right) -> bool {
    matches!(caller, Caller::App { user: None, .. }) && !matches!(right, Right::View | Right::Update)
}

/// Refuses `caller` unless it holds `right` on `app`; `granted` says whether `app` was
/// granted `right` in the `global` context (read only when [`needs_grant`]).
pub fn check(caller: &Caller, app: &ApplicationRecord, right: Right, granted: bool) -> SpaceResult<()> {
    let holds = match caller {
        Caller::Admin => true,
        Caller::User { user_id, orgs } => user_holds(user_id, orgs, app, right),
        Caller::App { app_id, scope, user: None, .. } => {
            if *app_id != app.id {
                return Err(SpaceError::forbidden("an application may only act on itself"));
            }
            crate::oauth::scope_grants(scope, right.code()) && (!needs_grant(caller, right) || granted)
        }
        Caller::App { scope, user: Some((user_id, orgs)), .. } => {
            crate::oauth::scope_grants(scope, right.code()) && user_holds(user_id, orgs, app, right)
        }
    };
    if holds { Ok(()) } else { Err(missing(right)) }
}

/// Refuses `caller` unless it may create an application in `org` (none: owned by the user).
pub fn check_create(caller: &Caller, org: Option<&str>) -> SpaceResult<()> {
    let holds = match (caller, org) {
        (Caller::Admin, _) => true,
        (Caller::User { .. }, None) => true,
        (Caller::User { orgs, .. }, Some(org)) => orgs.get(org) == Some(&Role::Admin),
        (Caller::App { .. }, _) => false,
    };
    if holds { Ok(()) } else { Err(missing(Right::Create)) }
}
