-- Applications (PostgreSQL).
-- Externally hosted applications (issue 7). `settings` holds the non-secret fields as JSON;
-- columns named `*_sealed` hold values sealed with the server key.
CREATE TABLE applications (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT,
    name                   TEXT NOT NULL,
    client_id              TEXT NOT NULL UNIQUE,
    client_secret_sealed   TEXT NOT NULL,
    signing_key_sealed     TEXT NOT NULL,
    verification_sealed    TEXT NOT NULL,
    auth_sealed            TEXT,
    settings               TEXT NOT NULL,
    -- active, uninstalling (ApplicationUninstalledPayload in flight) or archived
    status                 TEXT NOT NULL,
    last_cc_access_at      BIGINT,
    last_healthy_at        BIGINT,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL
);
CREATE INDEX applications_by_org ON applications (org_id, status);

-- Access tokens (client credentials, `kind` = access) and permanent tokens of an application,
-- stored as SHA-256 hashes.
CREATE TABLE application_tokens (
    id            TEXT PRIMARY KEY,
    app_id        TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    token_hash    TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    scope         TEXT NOT NULL,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX application_tokens_by_app ON application_tokens (app_id, kind, created_at);

CREATE TABLE application_webhooks (
    id                   TEXT PRIMARY KEY,
    app_id               TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    settings             TEXT NOT NULL,
    signing_key_sealed   TEXT NOT NULL,
    secrets_sealed       TEXT NOT NULL,
    archived             BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX application_webhooks_by_app ON application_webhooks (app_id, created_at);

CREATE TABLE application_subscriptions (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES application_webhooks(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    enabled     BIGINT NOT NULL,
    definition  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX application_subscriptions_by_webhook ON application_subscriptions (webhook_id, created_at);

-- Key/value parameters of an application; `profile` is '' for app-level parameters.
CREATE TABLE application_parameters (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    profile     TEXT NOT NULL,
    param_key   TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, profile, param_key)
);

-- Durable outgoing payloads. The worker claims due rows with a lease, so several replicas
-- never send the same attempt twice.
CREATE TABLE application_deliveries (
    id               TEXT PRIMARY KEY,
    app_id           TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    webhook_id       TEXT,
    kind             TEXT NOT NULL,
    url              TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    accepted_codes   TEXT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX application_deliveries_due ON application_deliveries (status, next_attempt_at);
CREATE INDEX application_deliveries_by_app ON application_deliveries (app_id, created_at);

-- The server's RSA key pair for X-Space-Public-Key-Signature (PKCS#8, sealed).
CREATE TABLE application_server_keys (
    kid                  TEXT PRIMARY KEY,
    private_key_sealed   TEXT NOT NULL,
    created_at           BIGINT NOT NULL
);

-- Private development applications of /api/v1/applications; `seq` orders them newest first.
CREATE TABLE private_applications (
    seq                  BIGSERIAL PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    description          TEXT,
    redirect_uris        TEXT,
    page_slug            TEXT,
    client_secret_sealed TEXT,
    created_at           BIGINT NOT NULL
);
