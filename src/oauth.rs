//! OAuth 2.0 rules that do not depend on HTTP or SQL: redirect-URI matching (RFC 6749
//! §3.1.2, exact string comparison), PKCE S256 (RFC 7636 §4.6), scopes, and the redirect
//! URLs that carry an answer back to the client (query for codes, fragment for the implicit
//! flow).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use sha2::{Digest as _, Sha256};

/// How long an authorization code may wait to be redeemed (RFC 6749 §4.1.2 recommends ≤ 10 min).
pub const CODE_TTL_MS: i64 = 60_000;
/// Lifetime of an access token.
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;
/// Lifetime of a refresh token.
pub const REFRESH_TOKEN_MS: i64 = 30 * 24 * 3600 * 1000;
/// The scope that grants everything the token's holder may do.
pub const ALL: &str = "**";
/// Longest scope string accepted.
pub const MAX_SCOPE_CHARS: usize = 1000;

/// The redirect URIs an application registered: its setting split on whitespace and commas.
pub fn registered_uris(setting: Option<&str>) -> Vec<&str> {
    setting
        .map_or_else(Vec::new, |s| s.split(|c: char| c.is_whitespace() || c == ',').filter(|u| !u.is_empty()).collect())
}

/// The redirect URI to use: the requested one when it is registered exactly, or the only
/// registered one when none was requested. `None` means the request must not be redirected.
pub fn choose_redirect<'a>(registered: &[&'a str], requested: Option<&'a str>) -> Option<&'a str> {
    match requested {
        Some(uri) => registered.iter().copied().find(|r| *r == uri),
        None if registered.len() == 1 => Some(registered[0]),
        None => None,
    }
}

/// Checks a PKCE challenge as the authorization endpoint receives it: S256 only, 43 base64url
/// characters.
pub fn check_challenge(challenge: &str, method: Option<&str>) -> Result<(), &'static str> {
    if method != Some("S256") {
        return Err("code_challenge_method must be S256");
    }
    if challenge.len() != 43 || BASE64URL.decode(challenge).is_err() {
        return Err("code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)");
    }
    Ok(())
}

/// Whether `verifier` (RFC 7636 §4.1: 43–128 unreserved characters) hashes to `challenge`.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    well_formed
        && crate::crypto::constant_time_eq(BASE64URL.encode(Sha256::digest(verifier)).as_bytes(), challenge.as_bytes())
}

/// A requested scope, normalised (space-separated tokens, `**` when empty).
pub fn normalise_scope(scope: Option<&str>) -> Result<String, &'static str> {
    let scope = scope.unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    if scope.chars().count() > MAX_SCOPE_CHARS {
        return Err("scope must be at most 1000 characters");
    }
    Ok(if scope.is_empty() { ALL.to_owned() } else { scope })
}

/// Whether `scope` grants `right` (`**` grants every right; a `global:` context prefix, as
/// Space writes scopes, means the same as none).
pub fn scope_grants(scope: &str, right: &str) -> bool {
    scope.split_whitespace().map(|s| s.strip_prefix("global:").unwrap_or(s)).any(|s| s == ALL || s == right)
}

/// Whether `narrower` asks for nothing `wider` does not grant (a refresh may narrow a scope,
/// never widen it: RFC 6749 §6).
pub fn scope_within(narrower: &str, wider: &str) -> bool {
    narrower
        .split_whitespace()
        .all(|s| scope_grants(wider, s) && (s != ALL || wider.split_whitespace().any(|w| w == ALL)))
}

/// `uri` with `params` appended to its query (codes and errors of the code flow).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(uri).expect("registered redirect URIs are absolute URLs");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// `uri` with `params` as its fragment (the implicit flow, RFC 6749 §4.2.2).
pub fn with_fragment(uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse(uri).expect("registered redirect URIs are absolute URLs");
    let fragment = reqwest::Url::parse_with_params("x:", params).map(|u| u.query().unwrap_or_default().to_owned());
    url.set_fragment(fragment.ok().as_deref());
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_exactly() {
        let registered = registered_uris(Some("https://a.example/cb https://b.example/cb\nhttp://localhost:8000/x"));
        assert_eq!(choose_redirect(&registered, Some("https://a.example/cb")), Some("https://a.example/cb"));
        assert_eq!(choose_redirect(&registered, Some("https://a.example/cb/")), None);
        assert_eq!(choose_redirect(&registered, Some("https://a.example/cb?x=1")), None);
        assert_eq!(choose_redirect(&registered, None), None, "ambiguous without a redirect_uri");
        assert_eq!(choose_redirect(&["https://only/"], None), Some("https://only/"));
    }

    #[test]
    fn pkce_uses_the_rfc_7636_example() {
        let (verifier, challenge) =
            ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(check_challenge(challenge, Some("S256")).is_ok());
        assert!(check_challenge(challenge, Some("plain")).is_err());
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx", challenge));
    }

    #[test]
    fn scopes_narrow_but_never_widen() {
        assert!(scope_grants("**", "Applications.View"));
        assert!(scope_grants("Applications.View Profile.View", "Profile.View"));
        assert!(!scope_grants("Profile.View", "Applications.View"));
        assert!(scope_within("Profile.View", "**"));
        assert!(scope_within("Profile.View", "Profile.View Applications.View"));
        assert!(!scope_within("**", "Profile.View"));
        assert_eq!(normalise_scope(Some("  a   b ")).unwrap(), "a b");
        assert_eq!(normalise_scope(None).unwrap(), "**");
    }

    #[test]
    fn answers_travel_in_the_query_or_the_fragment() {
        assert_eq!(with_query("https://a.example/cb?x=1", &[("code", "c d")]), "https://a.example/cb?x=1&code=c+d");
        assert_eq!(
            with_fragment("https://a.example/cb", &[("access_token", "t"), ("state", "s")]),
            "https://a.example/cb#access_token=t&state=s"
        );
    }
}
