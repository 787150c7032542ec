-- File transfers with their recipients and status histories, service owners, resource
-- settings, and the outbox of domain events. Times are Unix milliseconds (status changes within
-- one second keep their order) and JSON is TEXT, so the SQL is the same on PostgreSQL and SQLite.

CREATE TABLE file_transfers (
    id                 TEXT PRIMARY KEY,      -- UUIDv7
    resource_id        TEXT NOT NULL,
    file_name          TEXT NOT NULL,
    senders_reference  TEXT NULL,
    sender             TEXT NOT NULL,         -- org number
    property_list      TEXT NOT NULL,         -- JSON object
    checksum           TEXT NULL,             -- lowercase MD5 hex
    use_virus_scan     BOOLEAN NOT NULL,
    size               BIGINT NULL,
    status             TEXT NOT NULL,
    status_changed     BIGINT NOT NULL,
    created            BIGINT NOT NULL,
    created_month      TEXT NOT NULL,         -- YYYY-MM (UTC), for monthly statistics
    expires            BIGINT NOT NULL,
    published          BIGINT NULL,
    upload_started     BIGINT NULL,               -- for the stuck-uploads job
    storage_key        TEXT NULL,
    version            BIGINT NOT NULL            -- bumped by every change; recipient changes lock on it
);
CREATE INDEX file_transfers_resource_created ON file_transfers (resource_id, created);
CREATE INDEX file_transfers_resource_sender ON file_transfers (resource_id, sender, created);
CREATE INDEX file_transfers_resource_status ON file_transfers (resource_id, status, status_changed);
CREATE INDEX file_transfers_upload_started ON file_transfers (status, upload_started);
CREATE INDEX file_transfers_resource_month ON file_transfers (resource_id, created_month);

CREATE TABLE transfer_recipients (
    transfer_id     TEXT NOT NULL REFERENCES file_transfers (id) ON DELETE CASCADE,
    org_number      TEXT NOT NULL,
    position        BIGINT NOT NULL,              -- request order
    status          TEXT NOT NULL,
    status_changed  BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, org_number)
);
CREATE INDEX transfer_recipients_org ON transfer_recipients (org_number, transfer_id);

CREATE TABLE transfer_history (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id  TEXT NOT NULL REFERENCES file_transfers (id) ON DELETE CASCADE,
    status       TEXT NOT NULL,
    detail       TEXT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX transfer_history_transfer ON transfer_history (transfer_id, seq);

CREATE TABLE recipient_history (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id  TEXT NOT NULL REFERENCES file_transfers (id) ON DELETE CASCADE,
    org_number   TEXT NOT NULL,
    status       TEXT NOT NULL,
    at           BIGINT NOT NULL
);
CREATE INDEX recipient_history_transfer ON recipient_history (transfer_id, seq);

CREATE TABLE service_owners (
    org_number  TEXT PRIMARY KEY,
    org_code    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created     BIGINT NOT NULL
);

CREATE TABLE resource_settings (
    resource_id                           TEXT PRIMARY KEY,
    service_owner                         TEXT NOT NULL,  -- org number
    max_file_transfer_size                BIGINT NULL,
    time_to_live_ms                       BIGINT NOT NULL,
    purge_after_all_confirmed             BOOLEAN NOT NULL,
    grace_period_ms                       BIGINT NOT NULL,
    use_manifest_file_shim                BOOLEAN NOT NULL,
    external_service_code_legacy          TEXT NULL,
    external_service_edition_code_legacy  BIGINT NULL,
    required_party                        TEXT NULL,
    approved_for_disabled_virus_scan      BOOLEAN NOT NULL,
    updated                               BIGINT NOT NULL
);

CREATE TABLE outbox (
    id             TEXT PRIMARY KEY,    -- the event id, UUIDv7: ordered by creation
    routing_key    TEXT NOT NULL,
    payload        TEXT NOT NULL,       -- TransferEvent as JSON
    created_at     BIGINT NOT NULL,
    published_at   BIGINT NULL,
    claimed_until  BIGINT NULL
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
