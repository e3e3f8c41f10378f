-- Tokens get an id, so that they can be listed (without their secret) and revoked one by
-- one. The hash stays the key the server authenticates with.
ALTER TABLE api_tokens ADD COLUMN id TEXT;
UPDATE api_tokens SET id = 'tok_' || substr(md5(random()::text || clock_timestamp()::text || token_hash), 1, 20);
ALTER TABLE api_tokens ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX api_tokens_by_id ON api_tokens (id);
CREATE INDEX api_tokens_by_subject ON api_tokens (kind, subject);
