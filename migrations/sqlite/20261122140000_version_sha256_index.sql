-- The first event of a version after a restart looks up the hash of its wasm, which names
-- the compiled artifact's file. A version's row also holds the wasm and the compiled
-- artifact, over a megabyte that SQLite keeps in a chain of overflow pages ahead of
-- `sha256`: reading `sha256` from the row walks that whole chain. This covering index
-- answers the lookup without touching the row (`Store::module_sha256` names it).
-- PostgreSQL stores large values out of line, so its rows need no such index.
CREATE INDEX integration_versions_sha256 ON integration_versions (integration, version, sha256);
