-- The registry's metadata: the source of truth for what exists and where it may be served.
-- Storage holds only content-addressed bytes and in-progress uploads.

CREATE TABLE repositories (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Blobs whose bytes are whole and verified in storage.
CREATE TABLE blobs (
    digest     TEXT    PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- What a repository may serve: blobs pushed, mounted or linked into it.
CREATE TABLE repo_blobs (
    repo_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest    TEXT    NOT NULL REFERENCES blobs (digest),
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
);
CREATE INDEX repo_blobs_digest ON repo_blobs (digest);

-- Manifests are small: their bytes live here and are served without touching storage.
CREATE TABLE manifests (
    id            INTEGER PRIMARY KEY,
    repo_id       INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    digest        TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    size          INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (repo_id, digest)
);
CREATE INDEX manifests_subject ON manifests (repo_id, subject) WHERE subject IS NOT NULL;

-- Blobs a manifest references (config and layers), exact so that GC and usage are queries.
CREATE TABLE manifest_blobs (
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    digest      TEXT    NOT NULL,
    PRIMARY KEY (manifest_id, digest)
);
CREATE INDEX manifest_blobs_digest ON manifest_blobs (digest);

-- Child manifests of an index.
CREATE TABLE manifest_refs (
    parent_id    INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    child_digest TEXT    NOT NULL,
    PRIMARY KEY (parent_id, child_digest)
);

CREATE TABLE tags (
    repo_id     INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    manifest_id INTEGER NOT NULL REFERENCES manifests (id) ON DELETE CASCADE,
    pushed_at   INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name)
);
CREATE INDEX tags_manifest ON tags (manifest_id);

-- Upload sessions: the offset here is authoritative; storage may hold bytes past it from an
-- interrupted request, which the next append drops.
CREATE TABLE uploads (
    id           TEXT    PRIMARY KEY,
    repo_id      INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    offset_bytes INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX uploads_updated ON uploads (updated_at);
