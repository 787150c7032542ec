-- Resumable (tus) uploads: each transfer's own upload (part '') and its partial uploads (part
-- the partial's id), with everything a PATCH needs to go on where the last one stopped, on any
-- replica: the durable offset, the MD5 state of the bytes before it (never hashed twice), where
-- the bytes are (a staging file; on S3 a multipart upload with its finished parts' ids and the
-- short tail not yet a part, in an object of its own), and the PATCH writing it now, if any.
CREATE TABLE tus_uploads (
    transfer_id    TEXT NOT NULL REFERENCES file_transfers (id) ON DELETE CASCADE,
    part           TEXT NOT NULL,      -- '' for the transfer's own upload, else the partial's id
    length         BIGINT NOT NULL,
    upload_offset  BIGINT NOT NULL,      -- bytes durable
    md5_state      TEXT NOT NULL,      -- hex of the MD5 state after those bytes
    staging        TEXT NOT NULL,      -- staging file, or the multipart upload's object key
    multipart_id   TEXT NULL,
    parts          TEXT NOT NULL,      -- JSON array of the finished S3 parts' ids
    tail           BIGINT NOT NULL,      -- bytes after the last part, in the tail object (S3)
    concat         TEXT NOT NULL,      -- '', 'partial', or 'final;' and the partial ids
    metadata       TEXT NOT NULL,      -- Upload-Metadata as sent
    creator_org    TEXT NOT NULL,      -- who created it: an expired token must be theirs
    creator_client TEXT NOT NULL,
    expires        BIGINT NOT NULL,      -- Unix milliseconds; slides with every PATCH
    writer         TEXT NOT NULL,      -- the PATCH writing it ('' for none)
    writer_until   BIGINT NOT NULL,      -- when that PATCH's claim lapses unless renewed
    created        BIGINT NOT NULL,
    PRIMARY KEY (transfer_id, part)
);
CREATE INDEX tus_uploads_expires ON tus_uploads (expires);
