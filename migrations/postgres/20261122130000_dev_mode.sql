-- Dev mode: where an integration's live events go while its author develops it.
-- One row per integration that ever used dev mode; the signing secret outlives the
-- tunnel so the author's verifier keeps working across sessions.

CREATE TABLE dev_modes (
    integration     TEXT PRIMARY KEY,
    -- NULL while dev mode is off
    tunnel_url      TEXT,
    -- `http` (POST to tunnel_url) or `socket` (the reverse tunnel of `weft dev`)
    tunnel_kind     TEXT NOT NULL,
    -- 1: events of every organization, 0: only the integration's own
    all_orgs        BIGINT NOT NULL,
    -- the Standard Webhooks secret (`whsec_…`), sealed with the server key
    signing_secret  TEXT,
    updated_at      BIGINT NOT NULL
);
