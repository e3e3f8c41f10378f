-- What publish reported of each version's module: the guest ABI it speaks, whether it was
-- pre-initialised (1) or runs as published (0), and why not. NULL for versions published
-- before this was recorded (the console shows "—" for those).
ALTER TABLE integration_versions ADD COLUMN abi BIGINT;
ALTER TABLE integration_versions ADD COLUMN snapshot BIGINT;
ALTER TABLE integration_versions ADD COLUMN snapshot_reason TEXT;
