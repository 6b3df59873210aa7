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
-- month 2026-11) keeps the set of who pulled, per group a report counts: one row per
-- member. `who` is 'u:' and an account name, 'a:' and the first 8 bytes (hex) of the
-- address hashed with that period's key (never an address), or 'd:' and a company domain. kind names the group:
--   repo   key = repository                      (unique addresses per repository)
--   ref    key = repository, reference           (unique addresses per tag or digest)
--   trend  key = repository, country, cloud, tool, tag   (Trends' unique users)
--   puller key = repository                      (Technographic: who pulled which image)
--   domain key = repository, who = company domain (Technographic: which companies)
--   track  key = domain, country, cloud, tool, use case, repository (Tracked companies)
-- Key parts are separated by the unit separator (U+001F).
CREATE TABLE pull_uniques (
    namespace TEXT NOT NULL,
    period    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    key       TEXT NOT NULL,
    who       TEXT NOT NULL,
    PRIMARY KEY (namespace, period, kind, key, who)
) WITHOUT ROWID;
-- Technographic pairs images of every namespace by their common pullers.
CREATE INDEX pull_uniques_pullers ON pull_uniques (period, who) WHERE kind = 'puller';

-- The company domains an organization follows in its Tracked companies report.
CREATE TABLE analytics_tracked_domains (
    namespace  TEXT NOT NULL,
    domain     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, domain)
);
