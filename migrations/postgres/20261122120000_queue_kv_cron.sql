-- The durable queue (events, tasks and cron firings), the integrations' key-value store,
-- and the cron schedules' last firing.

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    integration      TEXT NOT NULL,
    installation_id  TEXT,
    -- the event object the integration receives (`type` plus its fields), as JSON
    event            TEXT NOT NULL,
    -- queued, running, done (kept only for idempotency keys) or dead
    status           TEXT NOT NULL,
    due_at           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_until      BIGINT,
    idempotency_key  TEXT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, due_at);
CREATE INDEX jobs_lease ON jobs (status, lease_until);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (integration, idempotency_key);

-- `scope` is `installation:<id>` or `integration:<name>`.
CREATE TABLE kv_entries (
    scope       TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE cron_state (
    integration     TEXT NOT NULL,
    schedule_index  BIGINT NOT NULL,
    -- the tick (ms) that fired last; replicas advance it with compare-and-set
    last_tick       BIGINT NOT NULL,
    PRIMARY KEY (integration, schedule_index)
);
