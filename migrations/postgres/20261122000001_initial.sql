-- weft's initial schema (PostgreSQL). Timestamps are milliseconds since the Unix epoch.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Bearer tokens, stored as SHA-256 hashes. `kind` is admin, user, integration or installation;
-- `subject` is what the token acts as (a user id, an integration name, an installation id).
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE integrations (
    name             TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs(id),
    visibility       TEXT NOT NULL,
    target           TEXT NOT NULL,
    current_version  BIGINT NOT NULL,
    -- every published field except the script, as JSON
    manifest         TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- One row per publish. `artifact` is the compiled module, so a restart never recompiles.
CREATE TABLE integration_versions (
    integration  TEXT NOT NULL REFERENCES integrations(name) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    wasm         BYTEA NOT NULL,
    artifact     BYTEA,
    sha256       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (integration, version)
);

CREATE TABLE installations (
    id             TEXT PRIMARY KEY,
    integration    TEXT NOT NULL REFERENCES integrations(name) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES orgs(id),
    status         TEXT NOT NULL,
    configuration  TEXT NOT NULL,
    external_ids   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX installations_by_integration ON installations (integration, id);

-- The events log. Ids sort by creation time, so pages are keyset ranges on `id`.
CREATE TABLE events (
    id               TEXT PRIMARY KEY,
    integration      TEXT NOT NULL,
    installation_id  TEXT,
    type             TEXT NOT NULL,
    status           TEXT NOT NULL,
    error_kind       TEXT,
    error_message    TEXT,
    response_status  BIGINT,
    duration_us      BIGINT NOT NULL,
    logs             TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX events_by_integration ON events (integration, id);
