-- Pull analytics. Raw events, deleted after the retention period, and the actions classified
-- from them, kept. No IP address is ever stored: only keyed hashes whose key changes every
-- week (ip_week) and every month (ip_month), so counts of unique addresses work within a
-- period and addresses cannot be followed across periods.
-- Raw events are stored in batches, as each node's writer collects them (about a second's
-- worth): one row per batch keeps capture cheap. `data` is a JSON array of events.
CREATE TABLE pull_event_batches (
    id       INTEGER PRIMARY KEY,
    first_ms INTEGER NOT NULL,
    last_ms  INTEGER NOT NULL,
    events   INTEGER NOT NULL,
    data     BLOB NOT NULL
);
CREATE INDEX pull_event_batches_last ON pull_event_batches (last_ms);

-- One row per action (version check, pull by tag, pull by digest), by the seeds' rules.
CREATE TABLE pull_actions (
    id           INTEGER PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    namespace    TEXT    NOT NULL,
    repo         TEXT    NOT NULL,
    tag          TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    user_name    TEXT    NOT NULL,
    ip_week      BLOB    NOT NULL,
    ip_month     BLOB    NOT NULL,
    tool         TEXT    NOT NULL,
    tool_version TEXT    NOT NULL,
    country      TEXT    NOT NULL,
    cloud        TEXT    NOT NULL,
    ip_type      TEXT    NOT NULL,
    domain       TEXT    NOT NULL
);
CREATE INDEX pull_actions_namespace_at ON pull_actions (namespace, at_ms);

-- Progress markers shared by the nodes (the classifier's watermark).
CREATE TABLE analytics_state (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);
