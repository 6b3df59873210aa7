-- The hub: repository information, archive state, logos, pull counters and trusted-content
-- programs. Categories are a comma-separated list of slugs from the curated list.

-- Logo images (JPEG or PNG, already validated), content-addressed.
CREATE TABLE logos (
    digest     TEXT    PRIMARY KEY,
    media_type TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE repositories ADD COLUMN namespace TEXT NOT NULL DEFAULT '';
UPDATE repositories SET namespace = CASE WHEN instr(name, '/') > 0
    THEN substr(name, 1, instr(name, '/') - 1) ELSE name END;
CREATE INDEX repositories_namespace ON repositories (namespace, name);
ALTER TABLE repositories ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN overview TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN categories TEXT NOT NULL DEFAULT '';
ALTER TABLE repositories ADD COLUMN archived INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN logo TEXT REFERENCES logos (digest);
ALTER TABLE repositories ADD COLUMN pull_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN last_pulled_at INTEGER;
ALTER TABLE repositories ADD COLUMN updated_at INTEGER;
UPDATE repositories SET updated_at = created_at;

ALTER TABLE tags ADD COLUMN pulled_at INTEGER;

-- An organization's logo (from its approved publisher profile) and its program badge.
ALTER TABLE namespaces ADD COLUMN logo TEXT REFERENCES logos (digest);
ALTER TABLE namespaces ADD COLUMN program TEXT;

CREATE TABLE program_applications (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT    NOT NULL REFERENCES namespaces (name),
    program     TEXT    NOT NULL CHECK (program IN ('open_source', 'verified_publisher')),
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'revoked')),
    legal_name  TEXT    NOT NULL,
    website     TEXT    NOT NULL,
    phone       TEXT    NOT NULL,
    email       TEXT    NOT NULL,
    logo        TEXT    NOT NULL REFERENCES logos (digest),
    applied_by  INTEGER NOT NULL REFERENCES users (id),
    applied_at  INTEGER NOT NULL,
    decided_by  INTEGER REFERENCES users (id),
    decided_at  INTEGER,
    note        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX program_applications_namespace ON program_applications (namespace, id);
CREATE INDEX program_applications_status ON program_applications (status, id);
