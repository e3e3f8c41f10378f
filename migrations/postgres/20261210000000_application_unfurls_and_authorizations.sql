-- (PostgreSQL)
-- Applications, part 3 (issue 21): the unfurl queue, posted unfurl content, external-auth
-- requests and authorizations leave the application's `settings` JSON for tables of their
-- own, so each write touches its own rows and concurrent writes cannot lose each other.
-- What the JSON held is copied over, then removed from it.

-- The contexts an application is authorized in (a context may hold no rights yet).
CREATE TABLE application_auth_contexts (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    context     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, context)
);

-- Each right's status in a context: GRANTED, DENIED or PENDING.
CREATE TABLE application_authorized_rights (
    app_id      TEXT NOT NULL,
    context     TEXT NOT NULL,
    right_code  TEXT NOT NULL,
    status      TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, context, right_code),
    FOREIGN KEY (app_id, context) REFERENCES application_auth_contexts(app_id, context) ON DELETE CASCADE
);
CREATE INDEX application_authorized_rights_by_context ON application_authorized_rights (context, status);

-- Links queued for an application to unfurl; `etag` grows per application.
CREATE TABLE application_unfurl_queue (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    etag        BIGINT NOT NULL,
    target      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, etag)
);

-- Unfurl content an application posted, for the host product to read back by link.
CREATE TABLE application_unfurl_content (
    seq         BIGSERIAL PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    target      TEXT,
    content     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX application_unfurl_content_by_app ON application_unfurl_content (app_id, seq);
CREATE INDEX application_unfurl_content_by_target ON application_unfurl_content (target);

-- External-auth requests an application made, for the host product to show its users.
CREATE TABLE application_auth_requests (
    seq         BIGSERIAL PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id     TEXT,
    request     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX application_auth_requests_by_app ON application_auth_requests (app_id, user_id, seq);

-- The JSON member `name` of `settings` when it has the type `kind`, else an empty one of it,
-- so the set-returning functions below never see a value of the wrong type.
CREATE FUNCTION weft_settings_member(settings TEXT, name TEXT, kind TEXT) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(settings::jsonb -> name) = kind THEN settings::jsonb -> name
                WHEN kind = 'object' THEN '{}'::jsonb ELSE '[]'::jsonb END
$$;

INSERT INTO application_auth_contexts (app_id, context, created_at)
SELECT a.id, c.key, a.updated_at
FROM applications a, jsonb_each(weft_settings_member(a.settings, 'authorizations', 'object')) c;

INSERT INTO application_authorized_rights (app_id, context, right_code, status, updated_at)
SELECT a.id, c.key, r.key, r.value #>> '{}', a.updated_at
FROM applications a,
     jsonb_each(weft_settings_member(a.settings, 'authorizations', 'object')) c,
     jsonb_each(CASE WHEN jsonb_typeof(c.value) = 'object' THEN c.value ELSE '{}'::jsonb END) r
WHERE jsonb_typeof(r.value) = 'string';

INSERT INTO application_unfurl_queue (app_id, etag, target, created_at)
SELECT a.id, (q.value ->> 'etag')::bigint, q.value ->> 'target',
       COALESCE(CASE WHEN jsonb_typeof(q.value -> 'createdAt') = 'number' THEN (q.value ->> 'createdAt')::bigint END,
                a.updated_at)
FROM applications a, jsonb_array_elements(weft_settings_member(a.settings, 'unfurlQueue', 'array')) q
WHERE jsonb_typeof(q.value) = 'object' AND jsonb_typeof(q.value -> 'etag') = 'number'
  AND jsonb_typeof(q.value -> 'target') = 'string'
ON CONFLICT DO NOTHING;

INSERT INTO application_unfurl_content (app_id, target, content, created_at)
SELECT a.id, CASE WHEN jsonb_typeof(u.value -> 'target') = 'string' THEN u.value ->> 'target' END,
       u.value::text, a.updated_at
FROM applications a,
     jsonb_array_elements(weft_settings_member(a.settings, 'unfurlContent', 'array')) WITH ORDINALITY AS u(value, n)
WHERE jsonb_typeof(u.value) = 'object'
ORDER BY a.id, u.n;

INSERT INTO application_auth_requests (app_id, user_id, request, created_at)
SELECT a.id, CASE WHEN jsonb_typeof(r.value -> 'userId') = 'string' THEN r.value ->> 'userId' END,
       r.value::text, a.updated_at
FROM applications a,
     jsonb_array_elements(weft_settings_member(a.settings, 'externalAuthRequests', 'array')) WITH ORDINALITY AS r(value, n)
WHERE jsonb_typeof(r.value) = 'object'
ORDER BY a.id, r.n;

UPDATE applications
SET settings = (settings::jsonb - 'authorizations' - 'unfurlQueue' - 'unfurlContent' - 'externalAuthRequests')::text,
    version = version + 1
WHERE settings::jsonb ?| ARRAY['authorizations', 'unfurlQueue', 'unfurlContent', 'externalAuthRequests'];

DROP FUNCTION weft_settings_member(TEXT, TEXT, TEXT);
