-- Tokens get an id, so that they can be listed (without their secret) and revoked one by
-- one. The hash stays the key the server authenticates with.
ALTER TABLE api_tokens ADD COLUMN id TEXT;
UPDATE api_tokens SET id = 'tok_' || lower(hex(randomblob(10)));
CREATE UNIQUE INDEX api_tokens_by_id ON api_tokens (id);
CREATE INDEX api_tokens_by_subject ON api_tokens (kind, subject);
