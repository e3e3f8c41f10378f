-- A JavaScript integration's bundle as published (`wasm` holds the engine's snapshot of it,
-- which is what runs): kept so the version can be read back, and snapshotted again by a
-- newer engine. NULL for a WebAssembly module.
ALTER TABLE integration_versions ADD COLUMN source BLOB;
