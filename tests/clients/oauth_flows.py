"""Drives weft's OAuth 2.0 endpoints with a third-party client (PyPI `authlib`).

stdin: {"base": "http://127.0.0.1:PORT", "user_token": "…", "apps": {name: {"client_id",
"client_secret", "redirect_uri"}}}. The user's consent is given the way the page's form
sends it (a form POST to /oauth/authorize). stdout: what each flow observed, as JSON; the
Rust test (tests/all/applications/oauth.rs) asserts on it.
"""

import json
import secrets
import sys
from urllib.parse import parse_qs, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge

config = json.load(sys.stdin)
base = config["base"]
apps = config["apps"]
user_token = config["user_token"]
metadata = requests.get(f"{base}/.well-known/oauth-authorization-server").json()
AUTHORIZE, TOKEN, REVOKE = (
    metadata["authorization_endpoint"],
    metadata["token_endpoint"],
    metadata["revocation_endpoint"],
)
observed = {"metadata": metadata}


def consent(authorization_url, decision="allow", token=None):
    """Shows the consent page, then submits it as the user would; returns (page status, Location)."""
    page = requests.get(authorization_url, allow_redirects=False)
    if page.status_code != 200:
        return page.status_code, page.headers.get("location")
    form = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
    form.update({"decision": decision, "user_token": user_token if token is None else token})
    answer = requests.post(AUTHORIZE, data=form, allow_redirects=False)
    return answer.status_code, answer.headers.get("location")


def params(location):
    parts = urlsplit(location)
    return {k: v[0] for k, v in parse_qs(parts.fragment or parts.query).items()}


def error_of(call):
    try:
        call()
        return None
    except OAuthError as error:
        return error.error


def me(access_token):
    """Status and body of an API call with the token (the profile parameters of its user)."""
    r = requests.get(f"{base}/api/http/applications/parameters/profile", headers={"authorization": f"Bearer {access_token}"})
    return r.status_code


def session(app, **kwargs):
    return OAuth2Session(
        app["client_id"], app.get("client_secret"), redirect_uri=app["redirect_uri"], scope="**", **kwargs
    )


# 1. Authorization code with PKCE (confidential client), refresh with rotation, reuse detection.
app = apps["code"]
client = session(app, code_challenge_method="S256")
verifier = generate_token(64)
url, state = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
status, location = consent(url)
observed["code_redirect_status"] = status
observed["code_state_matches"] = params(location).get("state") == state
token = client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
observed["code_token_type"] = token["token_type"]
observed["code_has_refresh"] = "refresh_token" in token
observed["code_me"] = me(token["access_token"])
code = params(location)["code"]
reuse = session(app)
observed["code_reused"] = error_of(
    lambda: reuse.fetch_token(TOKEN, grant_type="authorization_code", code=code, code_verifier=verifier)
)
observed["code_reuse_revoked_token"] = me(token["access_token"])

# A fresh grant to exercise refresh-token rotation.
url, state = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
first = client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
second = client.refresh_token(TOKEN, refresh_token=first["refresh_token"])
observed["refresh_rotated"] = second["refresh_token"] != first["refresh_token"]
observed["refresh_new_token_works"] = me(second["access_token"])
stale = session(app)
observed["refresh_reused"] = error_of(lambda: stale.refresh_token(TOKEN, refresh_token=first["refresh_token"]))
observed["refresh_reuse_revoked_grant"] = me(second["access_token"])

# 2. PKCE failures.
url, _ = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
wrong = session(app)
observed["pkce_wrong_verifier"] = error_of(
    lambda: wrong.fetch_token(TOKEN, authorization_response=location, code_verifier=generate_token(64))
)
url, _ = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
observed["pkce_missing_verifier"] = error_of(lambda: session(app).fetch_token(TOKEN, authorization_response=location))
required = apps["pkce_required"]
plain = OAuth2Session(required["client_id"], required["client_secret"], redirect_uri=required["redirect_uri"])
url, _ = plain.create_authorization_url(AUTHORIZE)
status, location = consent(url)
observed["pkce_required_redirect"] = [status, params(location).get("error")]

# 3. Redirect URIs must match exactly, at the authorization and the token endpoint.
wrong_uri = OAuth2Session(app["client_id"], app["client_secret"], redirect_uri=app["redirect_uri"] + "/evil")
url, _ = wrong_uri.create_authorization_url(AUTHORIZE)
observed["wrong_redirect_page"] = consent(url)
url, _ = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
observed["wrong_redirect_token"] = error_of(
    lambda: wrong_uri.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
)

# 4. The user denies, or signs in with a wrong token.
url, state = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
status, location = consent(url, decision="deny")
observed["denied"] = [status, params(location).get("error"), params(location).get("state") == state]
observed["bad_sign_in"] = consent(url, token="not-a-token")[0]

# 5. A public client: no secret, PKCE required.
public = apps["public"]
pub = OAuth2Session(public["client_id"], None, redirect_uri=public["redirect_uri"], code_challenge_method="S256",
                    token_endpoint_auth_method="none")
url, _ = pub.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
public_token = pub.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
observed["public_me"] = me(public_token["access_token"])
observed["public_needs_secret_for_client_credentials"] = error_of(
    lambda: OAuth2Session(public["client_id"], None, token_endpoint_auth_method="none").fetch_token(
        TOKEN, grant_type="client_credentials"
    )
)

# 6. The implicit flow, only where enabled.
implicit = apps["implicit"]
imp = OAuth2Session(implicit["client_id"], redirect_uri=implicit["redirect_uri"], scope="**")
url, state = imp.create_authorization_url(AUTHORIZE, response_type="token")
_, location = consent(url)
fragment = urlsplit(location).fragment
answer = params(location)
observed["implicit"] = [bool(fragment), answer.get("token_type"), answer.get("state") == state, me(answer["access_token"])]
url, _ = client.create_authorization_url(AUTHORIZE, response_type="token")
observed["implicit_disabled"] = consent(url)

# 7. Revocation (RFC 7009) of an access token and of a refresh token.
url, _ = client.create_authorization_url(AUTHORIZE, code_verifier=verifier)
_, location = consent(url)
token = client.fetch_token(TOKEN, authorization_response=location, code_verifier=verifier)
client.revoke_token(REVOKE, token=token["access_token"], token_type_hint="access_token")
observed["revoked_access"] = me(token["access_token"])
refreshed = client.refresh_token(TOKEN, refresh_token=token["refresh_token"])
client.revoke_token(REVOKE, token=refreshed["refresh_token"], token_type_hint="refresh_token")
observed["revoked_refresh_grant"] = [me(refreshed["access_token"]), error_of(
    lambda: session(app).refresh_token(TOKEN, refresh_token=refreshed["refresh_token"])
)]

# 8. Client credentials through the same library.
cc = OAuth2Session(app["client_id"], app["client_secret"])
observed["client_credentials"] = cc.fetch_token(TOKEN, grant_type="client_credentials")["token_type"]
observed["wrong_secret"] = error_of(
    lambda: OAuth2Session(app["client_id"], "wrong").fetch_token(TOKEN, grant_type="client_credentials")
)

json.dump(observed, sys.stdout)
