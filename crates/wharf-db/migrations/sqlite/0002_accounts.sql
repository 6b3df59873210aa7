-- Accounts: users and organizations share one namespace space; a user's name is their
-- personal namespace.

CREATE TABLE namespaces (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('user', 'org')),
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE REFERENCES namespaces (name),
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE orgs (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE REFERENCES namespaces (name),
    created_at INTEGER NOT NULL
);

CREATE TABLE org_members (
    org_id  INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT    NOT NULL CHECK (role IN ('owner', 'editor', 'member')),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

-- Keys wharf signs its registry tokens with; kept here so every node shares them.
CREATE TABLE signing_keys (
    id         TEXT    PRIMARY KEY,
    secret     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE repositories ADD COLUMN private INTEGER NOT NULL DEFAULT 0;
