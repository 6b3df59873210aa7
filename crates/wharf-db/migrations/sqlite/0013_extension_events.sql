-- Extension analytics: what Docker Desktop reports about a Docker Extension (an image
-- repository) through the operator's collector: installs, uninstalls, updates and openings
-- of the extension's tab. Kept (they make the all-time totals); no user identifier is stored:
-- only keyed hashes of (repository, user) whose key changes every week (user_week) and every
-- month (user_month), so unique users can be counted within a period and nobody can be
-- followed across periods or extensions.
CREATE TABLE extension_events (
    id         INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    namespace  TEXT    NOT NULL,
    repo       TEXT    NOT NULL,
    -- install, uninstall, update or open
    kind       TEXT    NOT NULL,
    -- the extension's version the event was about; empty when the collector did not say
    version    TEXT    NOT NULL,
    user_week  BLOB    NOT NULL,
    user_month BLOB    NOT NULL
);
CREATE INDEX extension_events_namespace_at ON extension_events (namespace, at_ms);
