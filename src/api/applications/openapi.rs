//! The applications surfaces in the OpenAPI document (`GET /v1/openapi.json`): every route of
//! `/api/http/applications`, `/api/v1/applications`, `/oauth` and the authorization-server
//! metadata, each with the right it checks. `tests/all/openapi.rs` keeps this table and the
//! routers in step.

use crate::api::openapi::{Access, Route};

const fn op(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route { method, path, summary, access: Access::Token, query: &[], body: None, ok: 200 }
}

const fn public(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route { access: Access::Public, ..op(method, path, summary) }
}

const APP: &str = "/api/http/applications/{application}";
const PAGE: &[&str] = &["$skip", "$top"];

/// Every route of the applications surfaces.
pub const ROUTES: &[Route] = &[
    Route {
        body: Some(
            "name, organization?, clientId?, clientSecret?, description?, endpointUri?, flows…, connectToSpace?, state?",
        ),
        ..op("post", "/api/http/applications", "Create application (Applications.Create)")
    },
    Route {
        query: &["$skip", "$top", "name", "owner", "withArchived", "withManaged", "ordering"],
        ..op("get", "/api/http/applications/paged", "Get all applications the caller may view")
    },
    op(
        "post",
        "/api/http/applications/report-application-as-healthy",
        "Report application as healthy (the application)",
    ),
    Route {
        body: Some("message?"),
        ..op("patch", "/api/http/applications/error-message", "Set the error message (the application)")
    },
    op("get", APP, "Get application (Applications.View)"),
    Route {
        body: Some("any field of create but clientId, organization, connectToSpace"),
        ..op("patch", APP, "Update application (Applications.Update; a connected one only by itself)")
    },
    op("delete", APP, "Delete application: uninstall payload to connected ones (Applications.Delete)"),
    op("post", "/api/http/applications/{application}/restore", "Restore application (Applications.Update)"),
    op(
        "post",
        "/api/http/applications/{application}/force-remove",
        "Force-remove after a failed uninstall payload (Applications.Delete)",
    ),
    op("get", "/api/http/applications/{application}/client-secret", "Get client secret (Applications.ViewSecrets)"),
    op(
        "post",
        "/api/http/applications/{application}/client-secret/regenerate",
        "Regenerate app secret (Applications.Update)",
    ),
    op("get", "/api/http/applications/{application}/signing-key", "Get signing key (Applications.ViewSecrets)"),
    op(
        "post",
        "/api/http/applications/{application}/signing-key/regenerate",
        "Regenerate signing key (Applications.Update)",
    ),
    op(
        "get",
        "/api/http/applications/{application}/verification-token",
        "Get verification token (Applications.ViewSecrets)",
    ),
    op(
        "post",
        "/api/http/applications/{application}/verification-token/regenerate",
        "Regenerate verification token (Applications.Update)",
    ),
    op(
        "get",
        "/api/http/applications/{application}/bearer-token",
        "Bearer token sent to the endpoint (Applications.ViewSecrets)",
    ),
    op(
        "get",
        "/api/http/applications/{application}/last-client-credentials-access",
        "Get last client credentials access info (Applications.View)",
    ),
    op("get", "/api/http/applications/{application}/public-keys", "Public keys as a JWKS (Applications.View)"),
    Route {
        body: Some("name, scope?, expires?"),
        ..op(
            "post",
            "/api/http/applications/{application}/permanent-tokens",
            "Create permanent token (Applications.Update)",
        )
    },
    Route {
        query: PAGE,
        ..op(
            "get",
            "/api/http/applications/{application}/permanent-tokens",
            "Get all permanent tokens (Applications.ViewSecrets)",
        )
    },
    op(
        "delete",
        "/api/http/applications/{application}/permanent-tokens/current",
        "Delete current permanent token (that token)",
    ),
    Route {
        body: Some("name?, scope?, expires?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/permanent-tokens/{tokenId}",
            "Update permanent token (Applications.Update)",
        )
    },
    op(
        "delete",
        "/api/http/applications/{application}/permanent-tokens/{tokenId}",
        "Delete permanent token (Applications.Update)",
    ),
    op("get", "/api/http/applications/{application}/ssh-keys", "Get ssh keys (Applications.View)"),
    Route {
        body: Some("publicKey, comment?"),
        ..op("post", "/api/http/applications/{application}/ssh-keys", "Add ssh key (Applications.Update)")
    },
    op("delete", "/api/http/applications/{application}/ssh-keys/{fingerprint}", "Delete ssh key (Applications.Update)"),
    Route {
        body: Some("contextIdentifier?, extensions"),
        ..op("patch", "/api/http/applications/ui-extensions", "Set UI extensions (the application)")
    },
    Route {
        query: &["contextIdentifier"],
        ..op(
            "get",
            "/api/http/applications/{application}/ui-extensions",
            "Get UI extensions, with the caller's own toggle (Applications.View)",
        )
    },
    Route {
        body: Some("contextIdentifier?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/ui-extensions/enable-for-everybody",
            "Enable application UI (Permissions.Grant)",
        )
    },
    Route {
        body: Some("contextIdentifier?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/ui-extensions/disable-for-everybody",
            "Disable application UI (Permissions.Grant)",
        )
    },
    Route {
        body: Some("contextIdentifier?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/ui-extensions/enable-for-me",
            "Enable application UI for me (a user; Applications.View)",
        )
    },
    Route {
        body: Some("contextIdentifier?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/ui-extensions/disable-for-me",
            "Disable application UI for me (a user; Applications.View)",
        )
    },
    Route {
        query: &["contextIdentifier"],
        ..op(
            "get",
            "/api/http/applications/authorizations/authorized-applications",
            "Get applications authorized in context (Applications.View)",
        )
    },
    op(
        "get",
        "/api/http/applications/{application}/authorizations/authorized-contexts",
        "Get all authorized contexts (Applications.View)",
    ),
    Route {
        query: &["contextIdentifier"],
        ..op(
            "get",
            "/api/http/applications/{application}/authorizations/authorized-rights",
            "Get all authorized rights (Applications.View)",
        )
    },
    Route {
        body: Some("contextIdentifier?, updates: [{rightCode, status}]"),
        ..op(
            "patch",
            "/api/http/applications/{application}/authorizations/authorized-rights",
            "Update authorized right (Permissions.Grant; never the application itself)",
        )
    },
    Route {
        query: &["contextIdentifier"],
        ..op(
            "delete",
            "/api/http/applications/{application}/authorizations/authorized-rights",
            "Delete authorized right (Applications.Update)",
        )
    },
    Route {
        body: Some("contextIdentifier?, rightCodes"),
        ..op(
            "patch",
            "/api/http/applications/{application}/authorizations/authorized-rights/request-rights",
            "Request rights (Applications.Update)",
        )
    },
    op(
        "get",
        "/api/http/applications/{application}/authorizations/required-rights",
        "Get all required rights (Applications.View)",
    ),
    Route {
        body: Some("rightCodesToAdd?, rightCodesToRemove?, requestRightsInAuthorizedContexts?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/authorizations/required-rights",
            "Update required right (Applications.Update)",
        )
    },
    Route {
        body: Some("organization, links (1–100 URLs)"),
        ..op(
            "post",
            "/api/http/applications/unfurls/links",
            "The host product reports links seen: queued for the org's applications whose authorized domains or \
             patterns match (org admin)",
        )
    },
    Route {
        query: &["organization", "link"],
        ..op(
            "get",
            "/api/http/applications/unfurls/content",
            "What the org's applications posted for a link (org member)",
        )
    },
    Route {
        query: &["organization", "userId"],
        ..op(
            "get",
            "/api/http/applications/unfurls/external-auth-requests",
            "The external-auth requests of the org's applications (org member)",
        )
    },
    Route {
        query: &["fromEtag", "batchSize"],
        ..op("get", "/api/http/applications/unfurls/queue", "Get unfurl queue items (Unfurls.Provide)")
    },
    Route {
        body: Some("unfurls"),
        ..op("post", "/api/http/applications/unfurls/queue/content", "Post unfurls content (Unfurls.Provide)")
    },
    op(
        "post",
        "/api/http/applications/unfurls/queue/request-external-auth",
        "Request external system authentication (Unfurls.Provide)",
    ),
    Route {
        body: Some("userId?"),
        ..op(
            "post",
            "/api/http/applications/unfurls/queue/reset-external-auth-requests",
            "Clear external system authentication requests (Unfurls.Provide)",
        )
    },
    op("get", "/api/http/applications/parameters/{key}", "Get parameter (an app token)"),
    Route {
        body: Some("value"),
        ..op(
            "patch",
            "/api/http/applications/parameters/{key}",
            "Set parameter (an app token; ≤ 100, key ≤ 64, value ≤ 1000)",
        )
    },
    op("delete", "/api/http/applications/parameters/{key}", "Remove parameter (an app token)"),
    op(
        "get",
        "/api/http/applications/parameters/profile",
        "Get all profile parameters (a user token issued to the application)",
    ),
    Route {
        body: Some("value"),
        ..op(
            "patch",
            "/api/http/applications/parameters/profile/{key}",
            "Set profile parameter (a user token issued to the application)",
        )
    },
    op(
        "delete",
        "/api/http/applications/parameters/profile/{key}",
        "Remove profile parameter (a user token issued to the application)",
    ),
    Route {
        body: Some("domains"),
        ..op("patch", "/api/http/applications/unfurls/domains", "Update unfurled domains (the application)")
    },
    Route {
        body: Some("patterns"),
        ..op("patch", "/api/http/applications/unfurls/patterns", "Update unfurled patterns (the application)")
    },
    op("get", "/api/http/applications/{application}/unfurl-domains", "Get all unfurl domains (Applications.View)"),
    op("get", "/api/http/applications/{application}/unfurl-patterns", "Get all unfurl patterns (Applications.View)"),
    Route {
        body: Some("domains, approve"),
        ..op(
            "post",
            "/api/http/applications/{application}/unfurl-domains/authorize",
            "Authorize unfurled domains (Unfurls.Authorize)",
        )
    },
    Route {
        body: Some("patterns, approve"),
        ..op(
            "post",
            "/api/http/applications/{application}/unfurl-patterns/authorize",
            "Authorize unfurled patterns (Unfurls.Authorize)",
        )
    },
    Route {
        body: Some(
            "name, description?, endpoint?, endpointAuth?, enabled?, acceptedHttpResponseCodes?, doRetries?, payloadFields? | payloadTemplate?, subscriptions?",
        ),
        ..op("post", "/api/http/applications/{application}/webhooks", "Create webhook (Applications.Update)")
    },
    Route {
        query: &["withArchived", "query", "$skip", "$top"],
        ..op("get", "/api/http/applications/{application}/webhooks", "Get all webhooks (Applications.View)")
    },
    op(
        "post",
        "/api/http/applications/{application}/webhooks/{webhookId}",
        "Restore archived webhook (Applications.Update)",
    ),
    Route {
        body: Some("any field of create but subscriptions"),
        ..op(
            "patch",
            "/api/http/applications/{application}/webhooks/{webhookId}",
            "Update webhook (Applications.Update)",
        )
    },
    op("delete", "/api/http/applications/{application}/webhooks/{webhookId}", "Archive webhook (Applications.Update)"),
    op(
        "get",
        "/api/http/applications/{application}/webhooks/{webhookId}/bearer-token",
        "Bearer token webhooks (Applications.ViewSecrets)",
    ),
    Route {
        body: Some("headers"),
        ..op(
            "post",
            "/api/http/applications/{application}/webhooks/{webhookId}/custom-headers",
            "Set custom headers (Applications.Update)",
        )
    },
    op(
        "get",
        "/api/http/applications/{application}/webhooks/{webhookId}/custom-headers",
        "Get custom headers (Applications.ViewSecrets)",
    ),
    op(
        "get",
        "/api/http/applications/{application}/webhooks/{webhookId}/signing-key",
        "Get signing key (webhooks) (Applications.ViewSecrets)",
    ),
    op(
        "post",
        "/api/http/applications/{application}/webhooks/{webhookId}/signing-key/regenerate",
        "Regenerate webhook signing key (Applications.Update)",
    ),
    Route {
        body: Some("subscription: {subjectCode?, eventTypeCodes, filters?}, name?, enabled?"),
        ..op(
            "post",
            "/api/http/applications/{application}/webhooks/{webhookId}/subscriptions",
            "Create subscription (Applications.Update)",
        )
    },
    op(
        "get",
        "/api/http/applications/{application}/webhooks/{webhookId}/subscriptions",
        "Get all subscriptions (Applications.View)",
    ),
    Route {
        body: Some("name?, enabled?, subscription?"),
        ..op(
            "patch",
            "/api/http/applications/{application}/webhooks/{webhookId}/subscriptions/{subscriptionId}",
            "Update subscription (Applications.Update)",
        )
    },
    op(
        "delete",
        "/api/http/applications/{application}/webhooks/{webhookId}/subscriptions/{subscriptionId}",
        "Delete subscription (Applications.Update)",
    ),
    op(
        "post",
        "/api/http/applications/{application}/webhooks/{webhookId}/subscriptions/{subscriptionId}/request-missing-rights",
        "Request missing rights (Applications.Update)",
    ),
    Route {
        query: &["$skip", "$top", "webhookId"],
        ..op(
            "get",
            "/api/http/applications/{application}/deliveries",
            "The delivery log, newest first (Applications.View)",
        )
    },
    op(
        "post",
        "/api/http/applications/{application}/deliveries/{deliveryId}/redeliver",
        "Send a succeeded or failed delivery again (Applications.Update)",
    ),
    Route {
        body: Some("name, description?, redirect_uris?, page?, generate_secret?"),
        ok: 201,
        ..op("post", "/api/v1/applications", "Create a private application owned by the caller")
    },
    op("get", "/api/v1/applications", "List the caller's private applications, newest first"),
    Route {
        query: &[
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
        ],
        ..public("get", "/oauth/authorize", "The sign-in and consent page (RFC 6749 §4.1.1, §4.2.1)")
    },
    Route {
        body: Some("the page's form: the request's fields, user_token, decision (allow | deny)"),
        ok: 303,
        ..public("post", "/oauth/authorize", "Consent: redirects with a code, a token (implicit) or an error")
    },
    Route {
        body: Some(
            "form: grant_type (authorization_code | refresh_token | client_credentials), code, redirect_uri, code_verifier, refresh_token, scope; client by HTTP Basic, client_id + client_secret, or client_id alone when public clients are allowed",
        ),
        ..public("post", "/oauth/token", "Token endpoint (RFC 6749 §3.2, RFC 7636)")
    },
    Route {
        body: Some("form: token, token_type_hint?; client authentication as for /oauth/token"),
        ..public("post", "/oauth/revoke", "Token revocation (RFC 7009)")
    },
    public("get", "/.well-known/oauth-authorization-server", "Authorization server metadata (RFC 8414)"),
];
