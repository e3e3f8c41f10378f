-- Counting an application's pending deliveries (its backlog, bounded per application at
-- ingest) reads only its pending rows, not its whole delivery log.
CREATE INDEX application_deliveries_pending_by_app ON application_deliveries (app_id, status);
