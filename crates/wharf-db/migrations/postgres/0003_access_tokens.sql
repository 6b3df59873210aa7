-- Personal access tokens: usable as a password for docker login and the API. Only a hash of
-- the secret is stored; the secret is shown once.
CREATE TABLE access_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'read-write', 'delete', 'admin')),
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
