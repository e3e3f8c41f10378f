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
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    target      TEXT,
    content     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX application_unfurl_content_by_app ON application_unfurl_content (app_id, seq);
CREATE INDEX application_unfurl_content_by_target ON application_unfurl_content (target);

-- External-auth requests an application made, for the host product to show its users.
CREATE TABLE application_auth_requests (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    user_id     TEXT,
    request     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX application_auth_requests_by_app ON application_auth_requests (app_id, user_id, seq);

INSERT INTO application_auth_contexts (app_id, context, created_at)
SELECT a.id, c.key, a.updated_at
FROM applications a, json_each(a.settings, '$.authorizations') c
WHERE json_type(a.settings, '$.authorizations') = 'object';

INSERT INTO application_authorized_rights (app_id, context, right_code, status, updated_at)
SELECT a.id, c.key, r.key, r.value, a.updated_at
FROM applications a, json_each(a.settings, '$.authorizations') c, json_each(c.value) r
WHERE json_type(a.settings, '$.authorizations') = 'object' AND c.type = 'object' AND r.type = 'text';

INSERT INTO application_unfurl_queue (app_id, etag, target, created_at)
SELECT a.id, json_extract(q.value, '$.etag'), json_extract(q.value, '$.target'),
       COALESCE(json_extract(q.value, '$.createdAt'), a.updated_at)
FROM applications a, json_each(a.settings, '$.unfurlQueue') q
WHERE json_type(a.settings, '$.unfurlQueue') = 'array' AND q.type = 'object'
  AND json_type(q.value, '$.etag') = 'integer' AND json_type(q.value, '$.target') = 'text'
ON CONFLICT DO NOTHING;

INSERT INTO application_unfurl_content (app_id, target, content, created_at)
SELECT a.id, CASE WHEN json_type(u.value, '$.target') = 'text' THEN json_extract(u.value, '$.target') END,
       u.value, a.updated_at
FROM applications a, json_each(a.settings, '$.unfurlContent') u
WHERE json_type(a.settings, '$.unfurlContent') = 'array' AND u.type = 'object'
ORDER BY a.id, u.key;

INSERT INTO application_auth_requests (app_id, user_id, request, created_at)
SELECT a.id, CASE WHEN json_type(r.value, '$.userId') = 'text' THEN json_extract(r.value, '$.userId') END,
       r.value, a.updated_at
FROM applications a, json_each(a.settings, '$.externalAuthRequests') r
WHERE json_type(a.settings, '$.externalAuthRequests') = 'array' AND r.type = 'object'
ORDER BY a.id, r.key;

UPDATE applications
SET settings = json_remove(settings, '$.authorizations', '$.unfurlQueue', '$.unfurlContent', '$.externalAuthRequests'),
    version = version + 1
WHERE json_type(settings, '$.authorizations') IS NOT NULL OR json_type(settings, '$.unfurlQueue') IS NOT NULL
   OR json_type(settings, '$.unfurlContent') IS NOT NULL OR json_type(settings, '$.externalAuthRequests') IS NOT NULL;
