-- (PostgreSQL)
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

-- The JSON member `name` of `settings` when it has the type `kind`, else an empty one of it,
-- so the set-returning functions below never see a value of the wrong type.
CREATE FUNCTION weft_settings_member(settings TEXT, name TEXT, kind TEXT) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(settings::jsonb -> name) = kind THEN settings::jsonb -> name
                WHEN kind = 'object' THEN '{}'::jsonb ELSE '[]'::jsonb END
$$;

INSERT INTO application_ui_extensions (app_id, context, extensions, updated_at)
SELECT a.id, c.key, c.value::text, a.updated_at
FROM applications a, jsonb_each(weft_settings_member(a.settings, 'uiExtensions', 'object')) c
WHERE jsonb_typeof(c.value) = 'array';

INSERT INTO application_ui_disabled (app_id, context, disabled_at)
SELECT a.id, c.key, a.updated_at
FROM applications a, jsonb_each(weft_settings_member(a.settings, 'uiDisabledForEverybody', 'object')) c
WHERE c.value = 'true'::jsonb;

INSERT INTO application_unfurl_targets (app_id, kind, value, position, authorized)
SELECT a.id, l.kind, e.value ->> 'value', e.n - 1, CASE WHEN e.value -> 'authorized' = 'true'::jsonb THEN 1 ELSE 0 END
FROM applications a,
     (VALUES ('domain', 'unfurlDomains'), ('pattern', 'unfurlPatterns')) AS l(kind, member),
     jsonb_array_elements(weft_settings_member(a.settings, l.member, 'array')) WITH ORDINALITY AS e(value, n)
WHERE jsonb_typeof(e.value) = 'object' AND jsonb_typeof(e.value -> 'value') = 'string'
ORDER BY a.id, l.kind, e.n
ON CONFLICT DO NOTHING;

INSERT INTO application_required_rights (app_id, right_code, position)
SELECT a.id, r.value #>> '{}', r.n - 1
FROM applications a,
     jsonb_array_elements(weft_settings_member(a.settings, 'requiredRights', 'array')) WITH ORDINALITY AS r(value, n)
WHERE jsonb_typeof(r.value) = 'string'
ORDER BY a.id, r.n
ON CONFLICT DO NOTHING;

INSERT INTO application_ssh_keys (app_id, fingerprint, public_key, comment, position)
SELECT a.id, k.value ->> 'fingerprint', COALESCE(k.value ->> 'publicKey', k.value ->> 'key'),
       CASE WHEN jsonb_typeof(k.value -> 'comment') = 'string' THEN k.value ->> 'comment' END, k.n - 1
FROM applications a,
     jsonb_array_elements(weft_settings_member(a.settings, 'sshKeys', 'array')) WITH ORDINALITY AS k(value, n)
WHERE jsonb_typeof(k.value) = 'object' AND jsonb_typeof(k.value -> 'fingerprint') = 'string'
  AND jsonb_typeof(COALESCE(k.value -> 'publicKey', k.value -> 'key')) = 'string'
ORDER BY a.id, k.n
ON CONFLICT DO NOTHING;

UPDATE applications
SET settings = (settings::jsonb - 'uiExtensions' - 'uiDisabledForEverybody' - 'unfurlDomains' - 'unfurlPatterns'
                - 'requiredRights' - 'sshKeys')::text,
    version = version + 1
WHERE settings::jsonb ?| ARRAY['uiExtensions', 'uiDisabledForEverybody', 'unfurlDomains', 'unfurlPatterns',
                               'requiredRights', 'sshKeys'];

DROP FUNCTION weft_settings_member(TEXT, TEXT, TEXT);
