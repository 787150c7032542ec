-- Access registry: service owners, resources and their policies, access lists with members and
-- resource connections, and the outbox of changes for other replicas.
-- Times are Unix seconds and JSON is TEXT, so the SQL is the same on PostgreSQL and SQLite.

CREATE TABLE service_owners (
    org_code    TEXT PRIMARY KEY,
    org_number  TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE resources (
    identifier  TEXT PRIMARY KEY,
    owner_code  TEXT NOT NULL,          -- hasCompetentAuthority.orgcode, for ownership checks
    document    TEXT NOT NULL,          -- the resource as JSON
    version     INTEGER NOT NULL,        -- optimistic concurrency (ETag); starts at 1
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX resources_owner ON resources (owner_code);

-- A policy goes with its resource.
CREATE TABLE policies (
    resource_identifier  TEXT PRIMARY KEY REFERENCES resources (identifier) ON DELETE CASCADE,
    rules                TEXT NOT NULL, -- JSON array of {subjects, actions}
    version              INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE TABLE access_lists (
    owner        TEXT NOT NULL,         -- the owner's org code
    identifier   TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    version      INTEGER NOT NULL,       -- bumped by every change of the list, its members or connections
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (owner, identifier)
);

CREATE TABLE list_members (
    owner            TEXT NOT NULL,
    list_identifier  TEXT NOT NULL,
    party            TEXT NOT NULL,     -- organisation party URN
    since            INTEGER NOT NULL,
    PRIMARY KEY (owner, list_identifier, party),
    FOREIGN KEY (owner, list_identifier) REFERENCES access_lists (owner, identifier) ON DELETE CASCADE
);
-- Decisions look memberships up by party.
CREATE INDEX list_members_party ON list_members (party);

CREATE TABLE list_connections (
    owner                TEXT NOT NULL,
    list_identifier      TEXT NOT NULL,
    resource_identifier  TEXT NOT NULL REFERENCES resources (identifier) ON DELETE CASCADE,
    action_filters       TEXT NOT NULL, -- JSON array of actions; empty means every action
    created_at           INTEGER NOT NULL,
    modified_at          INTEGER NOT NULL,
    PRIMARY KEY (owner, list_identifier, resource_identifier),
    FOREIGN KEY (owner, list_identifier) REFERENCES access_lists (owner, identifier) ON DELETE CASCADE
);
CREATE INDEX list_connections_resource ON list_connections (resource_identifier);

-- Written in the same transaction as the change it announces; a relay publishes it to the bus.
-- `claimed_until` is a relay's lease, so a second relay does not publish the same row meanwhile.
CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,    -- UUIDv7: ordered by creation
    routing_key    TEXT NOT NULL,
    payload        TEXT NOT NULL,       -- JSON
    created_at     INTEGER NOT NULL,
    published_at   INTEGER NULL,
    claimed_until  INTEGER NULL
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
