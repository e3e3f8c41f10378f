-- (SQLite)
-- Applications, part 2 (issue 21): OAuth 2.0 authorization codes and refresh tokens, tokens
-- that act for a user, owners, per-user UI toggles, a version for optimistic concurrency, and
-- the content type of deliveries whose body is a rendered payloadTemplate.

-- Bumped by every write of an application's row; a read-modify-write whose version moved
-- meanwhile is retried instead of overwriting the other writer.
ALTER TABLE applications ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
-- The user who created the application (NULL: the operator).
ALTER TABLE applications ADD COLUMN owner_id TEXT;
CREATE INDEX applications_by_owner ON applications (owner_id);
-- Connected (multi-org) applications, created with connectToSpace: typed out of `settings`
-- so lists can leave them out (withManaged=false). Existing rows are carried over.
ALTER TABLE applications ADD COLUMN connected BIGINT NOT NULL DEFAULT 0;
UPDATE applications SET connected = 1 WHERE settings LIKE '%"connectToSpace":true%';

-- Private development applications belong to the user who created them (NULL: the operator).
ALTER TABLE private_applications ADD COLUMN owner_id TEXT;
CREATE INDEX private_applications_by_owner ON private_applications (owner_id, seq);

-- Tokens issued through the authorization-code or implicit flow act for a user; `grant_id`
-- ties every token of one authorization together so it can be revoked as a whole.
ALTER TABLE application_tokens ADD COLUMN user_id TEXT;
ALTER TABLE application_tokens ADD COLUMN grant_id TEXT;
CREATE INDEX application_tokens_by_grant ON application_tokens (grant_id);

-- Authorization codes (stored hashed), single use and short-lived.
CREATE TABLE oauth_codes (
    code_hash              TEXT PRIMARY KEY,
    grant_id               TEXT NOT NULL,
    app_id                 TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id                TEXT NOT NULL,
    redirect_uri           TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    code_challenge         TEXT,
    expires_at             BIGINT NOT NULL,
    used_at                BIGINT,
    created_at             BIGINT NOT NULL
);

-- Refresh tokens (stored hashed). Each use rotates it: the old one is marked used, and a used
-- one presented again revokes its whole grant.
CREATE TABLE oauth_refresh_tokens (
    token_hash             TEXT PRIMARY KEY,
    grant_id               TEXT NOT NULL,
    app_id                 TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id                TEXT NOT NULL,
    scope                  TEXT NOT NULL,
    expires_at             BIGINT NOT NULL,
    used_at                BIGINT,
    created_at             BIGINT NOT NULL
);
CREATE INDEX oauth_refresh_tokens_by_grant ON oauth_refresh_tokens (grant_id);

-- "For me" UI-extension toggles: one row per application, user and context.
CREATE TABLE application_user_ui (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    context     TEXT NOT NULL,
    disabled    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, context)
);

ALTER TABLE application_deliveries ADD COLUMN content_type TEXT;
