-- (SQLite)
-- GitBook fidelity (issue 18): each event keeps the event object exactly as it was delivered
-- to the module (GitBook's `IntegrationEvent.payload`), as JSON text. Request bodies of
-- `fetch` events are cut to the server's configured cap before they are stored. Events
-- recorded before this migration have none (NULL); the API answers `{eventId, type}` for them.
ALTER TABLE events ADD COLUMN payload TEXT;
