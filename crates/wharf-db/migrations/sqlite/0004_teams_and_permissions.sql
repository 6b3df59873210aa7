-- Teams inside organizations, and per-repository permissions for users and teams.
CREATE TABLE teams (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_user ON team_members (user_id);

CREATE TABLE repo_permissions (
    repo_id      INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    grantee_kind TEXT    NOT NULL CHECK (grantee_kind IN ('user', 'team')),
    grantee_id   INTEGER NOT NULL,
    permission   TEXT    NOT NULL CHECK (permission IN ('read', 'write', 'admin')),
    PRIMARY KEY (repo_id, grantee_kind, grantee_id)
);
