-- Integration identity. A name can be freed (unpublish) and taken again by anyone, so
-- nothing an integration owns may be keyed by its name: every integration gets an id that
-- is never reused, and its versions, installations, jobs, events, cron state, dev mode,
-- kv entries and tokens hang off that id. A row left behind by an unpublished integration
-- can then never be mistaken for its successor's.

ALTER TABLE integrations ADD COLUMN id TEXT;
UPDATE integrations SET id = 'itg_' || substr(md5(random()::text || clock_timestamp()::text || name), 1, 20);
ALTER TABLE integrations ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX integrations_by_id ON integrations (id);

-- Versions: keyed by (integration_id, version).
ALTER TABLE integration_versions ADD COLUMN integration_id TEXT;
UPDATE integration_versions SET integration_id = i.id FROM integrations i WHERE i.name = integration_versions.integration;
DELETE FROM integration_versions WHERE integration_id IS NULL;
ALTER TABLE integration_versions DROP CONSTRAINT integration_versions_pkey;
ALTER TABLE integration_versions DROP COLUMN integration;
ALTER TABLE integration_versions ALTER COLUMN integration_id SET NOT NULL;
ALTER TABLE integration_versions ADD PRIMARY KEY (integration_id, version);
ALTER TABLE integration_versions ADD FOREIGN KEY (integration_id) REFERENCES integrations(id) ON DELETE CASCADE;

-- Installations keep their integration's name for display and URLs; ownership is the id.
ALTER TABLE installations ADD COLUMN integration_id TEXT REFERENCES integrations(id) ON DELETE CASCADE;
UPDATE installations SET integration_id = i.id FROM integrations i WHERE i.name = installations.integration;
DELETE FROM installations WHERE integration_id IS NULL;
ALTER TABLE installations ALTER COLUMN integration_id SET NOT NULL;
CREATE INDEX installations_by_integration_id ON installations (integration_id, id);

-- Jobs: rows of integrations that no longer exist are dropped; idempotency keys are per id.
ALTER TABLE jobs ADD COLUMN integration_id TEXT;
UPDATE jobs SET integration_id = i.id FROM integrations i WHERE i.name = jobs.integration;
DELETE FROM jobs WHERE integration_id IS NULL;
ALTER TABLE jobs ALTER COLUMN integration_id SET NOT NULL;
DROP INDEX jobs_idempotency;
CREATE UNIQUE INDEX jobs_idempotency ON jobs (integration_id, idempotency_key);
CREATE INDEX jobs_by_integration ON jobs (integration_id, status, due_at);

-- The events log.
ALTER TABLE events ADD COLUMN integration_id TEXT;
UPDATE events SET integration_id = i.id FROM integrations i WHERE i.name = events.integration;
DELETE FROM events WHERE integration_id IS NULL;
ALTER TABLE events ALTER COLUMN integration_id SET NOT NULL;
CREATE INDEX events_by_integration_id ON events (integration_id, id);
DROP INDEX events_by_integration;

-- Cron state: keyed by (integration_id, schedule_index).
ALTER TABLE cron_state ADD COLUMN integration_id TEXT;
UPDATE cron_state SET integration_id = i.id FROM integrations i WHERE i.name = cron_state.integration;
DELETE FROM cron_state WHERE integration_id IS NULL;
ALTER TABLE cron_state DROP CONSTRAINT cron_state_pkey;
ALTER TABLE cron_state DROP COLUMN integration;
ALTER TABLE cron_state ALTER COLUMN integration_id SET NOT NULL;
ALTER TABLE cron_state ADD PRIMARY KEY (integration_id, schedule_index);

-- Dev mode: keyed by integration_id.
ALTER TABLE dev_modes ADD COLUMN integration_id TEXT;
UPDATE dev_modes SET integration_id = i.id FROM integrations i WHERE i.name = dev_modes.integration;
DELETE FROM dev_modes WHERE integration_id IS NULL;
ALTER TABLE dev_modes DROP CONSTRAINT dev_modes_pkey;
ALTER TABLE dev_modes DROP COLUMN integration;
ALTER TABLE dev_modes ADD PRIMARY KEY (integration_id);

-- An integration's own kv scope was `integration:<name>`; it is `integration:<id>`.
DELETE FROM kv_entries WHERE scope LIKE 'integration:%'
    AND substr(scope, 13) NOT IN (SELECT name FROM integrations);
UPDATE kv_entries SET scope = 'integration:' || i.id FROM integrations i
    WHERE kv_entries.scope = 'integration:' || i.name;

-- Integration tokens acted as the name; they act as the id.
DELETE FROM api_tokens WHERE kind = 'integration' AND subject NOT IN (SELECT name FROM integrations);
UPDATE api_tokens SET subject = i.id FROM integrations i WHERE api_tokens.kind = 'integration' AND api_tokens.subject = i.name;
