-- Namespaces an administrator gave analytics to (the dashboard and the CSV downloads).
-- Namespaces in a trusted-content program have analytics without a row here.
CREATE TABLE namespace_analytics (
    namespace  TEXT COLLATE "C" PRIMARY KEY REFERENCES namespaces (name) ON DELETE CASCADE,
    enabled_by TEXT COLLATE "C" NOT NULL,
    enabled_at BIGINT NOT NULL
);
