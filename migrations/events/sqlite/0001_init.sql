-- The event log, subscriptions, and the delivery queue. Times are Unix milliseconds and JSON is
-- TEXT, so the SQL is the same on PostgreSQL and SQLite; only the id columns differ.

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT, -- append order
    id         TEXT NOT NULL UNIQUE,  -- the CloudEvent id
    resource   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    payload    TEXT NOT NULL,         -- the CloudEvent as JSON
    appended   BIGINT NOT NULL
);
CREATE INDEX events_by_resource ON events (resource, seq);

-- One row that every append updates first: appenders take its lock in turn, so sequence numbers
-- are handed out in commit order and a pull reader's `after` never skips a later commit.
CREATE TABLE append_turn (
    id       INTEGER PRIMARY KEY,
    appends  BIGINT NOT NULL
);
INSERT INTO append_turn (id, appends) VALUES (1, 0);

CREATE TABLE subscriptions (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    end_point         TEXT NOT NULL,
    resource_filter   TEXT NOT NULL,
    subject_filter    TEXT NULL,
    source_filter     TEXT NULL,
    type_filter       TEXT NULL,
    include_subunits  BOOLEAN NOT NULL,
    consumer          TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    created           BIGINT NOT NULL,
    validated         BOOLEAN NOT NULL
);
CREATE INDEX subscriptions_by_resource ON subscriptions (resource_filter);
CREATE INDEX subscriptions_by_consumer ON subscriptions (consumer);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id         TEXT NOT NULL REFERENCES events (id),
    subscription_id  BIGINT NOT NULL REFERENCES subscriptions (id),
    state            TEXT NOT NULL,   -- pending | delivered | dead
    attempts         BIGINT NOT NULL,
    next_attempt     BIGINT NOT NULL,
    claimed_until    BIGINT NULL,
    last_error       TEXT NULL,
    updated          BIGINT NOT NULL,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
