-- Pull analytics rollups, written by the classifier in the same transaction as the actions
-- they count, so the reports read thousands of rows instead of millions of actions.

-- Action counts per UTC day (days since 1970-01-01) and per everything a report groups by.
-- Counts add up, so a week or a month is the sum of its days. use_case follows from tool
-- and cloud; it is stored so the Tracked companies report can group by it.
CREATE TABLE pull_daily (
    namespace       TEXT NOT NULL,
    day             BIGINT NOT NULL,
    repo            TEXT NOT NULL,
    tag             TEXT NOT NULL,
    digest          TEXT NOT NULL,
    country         TEXT NOT NULL,
    cloud           TEXT NOT NULL,
    tool            TEXT NOT NULL,
    use_case        TEXT NOT NULL,
    domain          TEXT NOT NULL,
    pulls_by_tag    BIGINT NOT NULL,
    pulls_by_digest BIGINT NOT NULL,
    version_checks  BIGINT NOT NULL,
    PRIMARY KEY (namespace, day, repo, tag, digest, country, cloud, tool, use_case, domain)
) WITHOUT ROWID;

-- Unique pullers do not add up across days, so each period (an ISO week 2026-W47 or a
-- month 2026-11) keeps the set of who pulled, per group a report counts: one row per member,
-- both as 64-bit hashes so the table stays small enough to be cached (a period of a busy
-- namespace holds millions of members). grp hashes the namespace, the period, the kind of
-- group and its key (see wharf-hub/src/analytics_reports.rs: ns, repo, ref, trend, track);
-- who is odd for an account (a hash of its name) and even for an address (8 bytes of the
-- address hashed with the period's key, never the address).
CREATE TABLE pull_uniques (
    grp BIGINT NOT NULL,
    who BIGINT NOT NULL,
    PRIMARY KEY (grp, who)
) WITHOUT ROWID;

-- Who pulled which image in each period, for the Technographic report, which pairs the
-- images of every namespace by their common pullers (the primary key finds them by who).
CREATE TABLE pull_pullers (
    period    TEXT NOT NULL,
    who       BIGINT NOT NULL,
    namespace TEXT NOT NULL,
    repo      TEXT NOT NULL,
    PRIMARY KEY (period, who, namespace, repo)
) WITHOUT ROWID;
CREATE INDEX pull_pullers_image ON pull_pullers (namespace, period, repo);

-- The company domains (business addresses; personal, disposable and university domains
-- left out) that pulled each image in each period: Technographic's DOMAINS.
CREATE TABLE pull_image_domains (
    namespace TEXT NOT NULL,
    period    TEXT NOT NULL,
    repo      TEXT NOT NULL,
    domain    TEXT NOT NULL,
    PRIMARY KEY (namespace, period, repo, domain)
) WITHOUT ROWID;

-- The company domains an organization follows in its Tracked companies report.
CREATE TABLE analytics_tracked_domains (
    namespace  TEXT NOT NULL,
    domain     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, domain)
);
