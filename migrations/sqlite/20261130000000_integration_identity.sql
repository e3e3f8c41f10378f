-- Integration identity. A name can be freed (unpublish) and taken again by anyone, so
-- nothing an integration owns may be keyed by its name: every integration gets an id that
-- is never reused, and its versions, installations, jobs, events, cron state, dev mode,
-- kv entries and tokens hang off that id. A row left behind by an unpublished integration
-- can then never be mistaken for its successor's.

ALTER TABLE integrations ADD COLUMN id TEXT;
UPDATE integrations SET id = 'itg_' || lower(hex(randomblob(10)));
CREATE UNIQUE INDEX integrations_by_id ON integrations (id);

-- Versions: keyed by (integration_id, version). Rebuilt to change the key.
CREATE TABLE integration_versions_new (
    integration_id  TEXT NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    version         BIGINT NOT NULL,
    wasm            BLOB NOT NULL,
    artifact        BLOB,
    sha256          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (integration_id, version)
);
INSERT INTO integration_versions_new (integration_id, version, wasm, artifact, sha256, created_at)
    SELECT i.id, v.version, v.wasm, v.artifact, v.sha256, v.created_at
    FROM integration_versions v JOIN integrations i ON i.name = v.integration;
DROP TABLE integration_versions;
ALTER TABLE integration_versions_new RENAME TO integration_versions;
-- See 20261122140000_version_sha256_index.sql: the first event of a version after a restart
-- reads `sha256` through this covering index instead of the row's overflow chain.
CREATE INDEX integration_versions_sha256 ON integration_versions (integration_id, version, sha256);

-- Installations keep their integration's name for display and URLs; ownership is the id.
ALTER TABLE installations ADD COLUMN integration_id TEXT REFERENCES integrations(id) ON DELETE CASCADE;
UPDATE installations SET integration_id = (SELECT id FROM integrations WHERE integrations.name = installations.integration);
DELETE FROM installations WHERE integration_id IS NULL;
CREATE INDEX installations_by_integration_id ON installations (integration_id, id);

-- Jobs: rows of integrations that no longer exist are dropped; idempotency keys are per id.
ALTER TABLE jobs ADD COLUMN integration_id TEXT;
UPDATE jobs SET integration_id = (SELECT id FROM integrations WHERE integrations.name = jobs.integration);
DELETE FROM jobs WHERE integration_id IS NULL;
DROP INDEX jobs_idempotency;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (integration_id, idempotency_key);
CREATE INDEX jobs_by_integration ON jobs (integration_id, status, due_at);

-- The events log.
ALTER TABLE events ADD COLUMN integration_id TEXT;
UPDATE events SET integration_id = (SELECT id FROM integrations WHERE integrations.name = events.integration);
DELETE FROM events WHERE integration_id IS NULL;
CREATE INDEX events_by_integration_id ON events (integration_id, id);
DROP INDEX events_by_integration;

-- Cron state: keyed by (integration_id, schedule_index). Rebuilt to change the key.
CREATE TABLE cron_state_new (
    integration_id  TEXT NOT NULL,
    schedule_index  BIGINT NOT NULL,
    last_tick       BIGINT NOT NULL,
    PRIMARY KEY (integration_id, schedule_index)
);
INSERT INTO cron_state_new (integration_id, schedule_index, last_tick)
    SELECT i.id, c.schedule_index, c.last_tick FROM cron_state c JOIN integrations i ON i.name = c.integration;
DROP TABLE cron_state;
ALTER TABLE cron_state_new RENAME TO cron_state;

-- Dev mode: keyed by integration_id. Rebuilt to change the key.
CREATE TABLE dev_modes_new (
    integration_id  TEXT PRIMARY KEY,
    tunnel_url      TEXT,
    tunnel_kind     TEXT NOT NULL,
    all_orgs        BIGINT NOT NULL,
    signing_secret  TEXT,
    updated_at      BIGINT NOT NULL
);
INSERT INTO dev_modes_new (integration_id, tunnel_url, tunnel_kind, all_orgs, signing_secret, updated_at)
    SELECT i.id, d.tunnel_url, d.tunnel_kind, d.all_orgs, d.signing_secret, d.updated_at
    FROM dev_modes d JOIN integrations i ON i.name = d.integration;
DROP TABLE dev_modes;
ALTER TABLE dev_modes_new RENAME TO dev_modes;

-- An integration's own kv scope was `integration:<name>`; it is `integration:<id>`.
DELETE FROM kv_entries WHERE scope LIKE 'integration:%'
    AND substr(scope, 13) NOT IN (SELECT name FROM integrations);
UPDATE kv_entries SET scope = 'integration:' || (SELECT id FROM integrations WHERE integrations.name = substr(kv_entries.scope, 13))
    WHERE scope LIKE 'integration:%';

-- Integration tokens acted as the name; they act as the id.
DELETE FROM api_tokens WHERE kind = 'integration' AND subject NOT IN (SELECT name FROM integrations);
UPDATE api_tokens SET subject = (SELECT id FROM integrations WHERE integrations.name = api_tokens.subject)
    WHERE kind = 'integration';
