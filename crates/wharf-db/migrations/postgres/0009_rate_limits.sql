-- Pull and API rate limits. Each node counts locally and adds its counts here about once a
-- second, so every node (and a restarted one) sees the pulls made through the others.
CREATE TABLE rate_counters (
    -- Who is counted: "ip:ADDRESS", "ip:PREFIX/64", "user:ID", with "api:" in front for the
    -- JSON API's own limit.
    key TEXT COLLATE "C" NOT NULL,
    -- Start of the fixed window (seconds since the epoch, a multiple of its length).
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_counters_window ON rate_counters (window_start);

-- What an administrator set: a limit of its own (pulls per window) or an exemption (NULL)
-- for a user, an organization (its members and tokens) or an address range.
CREATE TABLE rate_limit_rules (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'org', 'range')),
    subject TEXT COLLATE "C" NOT NULL,
    pulls BIGINT,
    note TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
