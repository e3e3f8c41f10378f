-- The console's charts: events by time (per integration and server-wide), and the queue's
-- depth once a minute per integration, kept for a day (the jobs table only knows "now").
CREATE INDEX events_by_integration_time ON events (integration_id, created_at);
CREATE INDEX events_by_time ON events (created_at);

CREATE TABLE queue_depth_samples (
    minute          BIGINT NOT NULL,
    integration_id  TEXT NOT NULL,
    queued          BIGINT NOT NULL,
    running         BIGINT NOT NULL,
    dead            BIGINT NOT NULL,
    PRIMARY KEY (minute, integration_id)
);
