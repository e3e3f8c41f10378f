-- The integrations API: users and roles, spaces and sites, space and site installations,
-- installation selections and integration secrets (sealed with the server key).

ALTER TABLE integrations ADD COLUMN secrets TEXT;

ALTER TABLE installations ADD COLUMN space_selection TEXT NOT NULL DEFAULT 'selected';
ALTER TABLE installations ADD COLUMN site_selection TEXT NOT NULL DEFAULT 'selected';
CREATE INDEX installations_by_org ON installations (org_id, integration);

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- `role` is admin or member.
CREATE TABLE org_members (
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_by_user ON org_members (user_id);

CREATE TABLE spaces (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX spaces_by_org ON spaces (org_id, id);

CREATE TABLE sites (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    title       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX sites_by_org ON sites (org_id, id);

-- An installation's presence on one space or site (`target_id` is the space or site id).
CREATE TABLE space_installations (
    installation_id  TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
    target_id        TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    integration      TEXT NOT NULL,
    org_id           TEXT NOT NULL,
    status           TEXT NOT NULL,
    configuration    TEXT NOT NULL,
    external_ids     TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (installation_id, target_id)
);
CREATE INDEX space_installations_by_target ON space_installations (target_id);
CREATE INDEX space_installations_by_integration ON space_installations (integration, installation_id, target_id);

CREATE TABLE site_installations (
    installation_id  TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
    target_id        TEXT NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    integration      TEXT NOT NULL,
    org_id           TEXT NOT NULL,
    status           TEXT NOT NULL,
    configuration    TEXT NOT NULL,
    external_ids     TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (installation_id, target_id)
);
CREATE INDEX site_installations_by_target ON site_installations (target_id);
CREATE INDEX site_installations_by_integration ON site_installations (integration, installation_id, target_id);
