-- Classified actions are stored as compact batches, one per namespace, UTC day (days since
-- 1970-01-01) and classifier run, instead of a row each: a run stores its actions in a few
-- rows, which keeps classification cheap at tens of thousands of pulls per second. `data` is
-- each distinct string once, then each action as its time and the indexes of its fields,
-- encoded as wharf-hub/src/analytics_actions.rs (StoredBatch) says. Rows of pull_actions
-- from earlier versions are moved into batches when wharf starts.
CREATE TABLE pull_action_batches (
    id        INTEGER PRIMARY KEY,
    namespace TEXT    NOT NULL,
    day       BIGINT  NOT NULL,
    actions   BIGINT  NOT NULL,
    data      BLOB    NOT NULL
);
CREATE INDEX pull_action_batches_namespace_day ON pull_action_batches (namespace, day, id);

-- What one classifier run hands to the next with the watermark: the actions still open at
-- the watermark (their first request, and whether a HEAD was already followed by its GET),
-- so the next run needs none of the events before it. until_ms is the watermark it belongs to.
CREATE TABLE analytics_carry (
    name     TEXT   PRIMARY KEY,
    until_ms BIGINT NOT NULL,
    data     BLOB   NOT NULL
);
