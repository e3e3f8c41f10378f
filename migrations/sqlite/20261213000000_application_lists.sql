-- Applications, part 4 (issue 21): what an application keeps as lists — its UI extensions per
-- context, the contexts its UI is disabled in for everybody, the unfurl domains and patterns it
-- declared (and whether each is authorized), the rights it requires and its ssh keys — leave
-- the `settings` JSON for tables of their own, so adding or removing one entry writes one row
-- and never rewrites the application. What the JSON held is copied over, then removed from it.

-- The UI extensions an application registered in a context, as the JSON array it sent.
CREATE TABLE application_ui_extensions (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    context     TEXT NOT NULL,
    extensions  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (app_id, context)
);

-- The contexts in which an application's UI is disabled for everybody (a row: disabled).
CREATE TABLE application_ui_disabled (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    context     TEXT NOT NULL,
    disabled_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, context)
);

-- The unfurl domains (`kind` 'domain') and link prefixes ('pattern') an application declared,
-- in the order it declared them, each authorized (1) or not (0) by the operator.
CREATE TABLE application_unfurl_targets (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    position    BIGINT NOT NULL,
    authorized  BIGINT NOT NULL,
    PRIMARY KEY (app_id, kind, value)
);
CREATE INDEX application_unfurl_targets_authorized ON application_unfurl_targets (authorized, app_id);

-- The rights an application requires, in the order they were added.
CREATE TABLE application_required_rights (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    right_code  TEXT NOT NULL,
    position    BIGINT NOT NULL,
    PRIMARY KEY (app_id, right_code)
);

-- The ssh keys of an application, in the order they were added.
CREATE TABLE application_ssh_keys (
    app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    comment     TEXT,
    position    BIGINT NOT NULL,
    PRIMARY KEY (app_id, fingerprint)
);

INSERT INTO application_ui_extensions (app_id, context, extensions, updated_at)
SELECT a.id, c.key, c.value, a.updated_at
FROM applications a, json_each(a.settings, '$.uiExtensions') c
WHERE json_type(a.settings, '$.uiExtensions') = 'object' AND c.type = 'array';

INSERT INTO application_ui_disabled (app_id, context, disabled_at)
SELECT a.id, c.key, a.updated_at
FROM applications a, json_each(a.settings, '$.uiDisabledForEverybody') c
WHERE json_type(a.settings, '$.uiDisabledForEverybody') = 'object' AND c.type = 'true';

INSERT INTO application_unfurl_targets (app_id, kind, value, position, authorized)
SELECT a.id, l.kind, json_extract(e.value, '$.value'), e.key,
       CASE WHEN json_type(e.value, '$.authorized') = 'true' THEN 1 ELSE 0 END
FROM applications a,
     (SELECT 'domain' AS kind, '$.unfurlDomains' AS path UNION ALL SELECT 'pattern', '$.unfurlPatterns') l,
     json_each(a.settings, l.path) e
WHERE json_type(a.settings, l.path) = 'array' AND e.type = 'object' AND json_type(e.value, '$.value') = 'text'
ORDER BY a.id, l.kind, e.key
ON CONFLICT DO NOTHING;

INSERT INTO application_required_rights (app_id, right_code, position)
SELECT a.id, r.value, r.key
FROM applications a, json_each(a.settings, '$.requiredRights') r
WHERE json_type(a.settings, '$.requiredRights') = 'array' AND r.type = 'text'
ORDER BY a.id, r.key
ON CONFLICT DO NOTHING;

INSERT INTO application_ssh_keys (app_id, fingerprint, public_key, comment, position)
SELECT a.id, json_extract(k.value, '$.fingerprint'),
       COALESCE(json_extract(k.value, '$.publicKey'), json_extract(k.value, '$.key')),
       CASE WHEN json_type(k.value, '$.comment') = 'text' THEN json_extract(k.value, '$.comment') END, k.key
FROM applications a, json_each(a.settings, '$.sshKeys') k
WHERE json_type(a.settings, '$.sshKeys') = 'array' AND k.type = 'object'
  AND json_type(k.value, '$.fingerprint') = 'text'
  AND COALESCE(json_type(k.value, '$.publicKey'), json_type(k.value, '$.key')) = 'text'
ORDER BY a.id, k.key
ON CONFLICT DO NOTHING;

UPDATE applications
SET settings = json_remove(settings, '$.uiExtensions', '$.uiDisabledForEverybody', '$.unfurlDomains',
                           '$.unfurlPatterns', '$.requiredRights', '$.sshKeys'),
    version = version + 1
WHERE json_type(settings, '$.uiExtensions') IS NOT NULL OR json_type(settings, '$.uiDisabledForEverybody') IS NOT NULL
   OR json_type(settings, '$.unfurlDomains') IS NOT NULL OR json_type(settings, '$.unfurlPatterns') IS NOT NULL
   OR json_type(settings, '$.requiredRights') IS NOT NULL OR json_type(settings, '$.sshKeys') IS NOT NULL;
