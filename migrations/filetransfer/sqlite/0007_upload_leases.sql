-- Upload leases: which process is writing a transfer's upload, until when, and where the bytes
-- are while they arrive. The row is written with the move to UploadStarted and removed with the
-- move out of it, so an upload is never in UploadStarted without one. The holder renews
-- `expires` while the upload runs; once it lapses (the process died or stopped), the lifecycle
-- job fails the transfer (`uploadfailed`) and removes what `staging` names.
CREATE TABLE upload_leases (
    transfer_id   TEXT PRIMARY KEY REFERENCES file_transfers (id) ON DELETE CASCADE,
    holder        TEXT NOT NULL,      -- the process writing the upload; '' once the job took it
    expires       BIGINT NOT NULL,    -- Unix milliseconds
    staging       TEXT NOT NULL,      -- key of the staging file or spool, or of the multipart's object
    multipart_id  TEXT NULL           -- the S3 multipart upload to abort, when there is one
);
CREATE INDEX upload_leases_expires ON upload_leases (expires);
