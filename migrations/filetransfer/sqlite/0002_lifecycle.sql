-- The lifecycle jobs: purge on expiry or after every recipient confirmed, fail stuck uploads, and
-- remove the bytes of transfers that reached Purged or Failed.

-- Set (in the transaction that moves a transfer to Purged or Failed) while its bytes may still be
-- in storage; cleared once they are deleted. A crash between the commit and the deletion leaves
-- the flag set, and the byte sweep deletes them later: nothing leaks for good.
ALTER TABLE file_transfers ADD COLUMN bytes_pending BOOLEAN NOT NULL DEFAULT FALSE;

-- The purge job's expiry branch: Published / AllConfirmedDownloaded rows by expiry time.
CREATE INDEX file_transfers_status_expires ON file_transfers (status, expires);
-- The stuck-processing check and the grace period after all confirmed.
CREATE INDEX file_transfers_status_changed ON file_transfers (status, status_changed);
-- The byte sweep.
CREATE INDEX file_transfers_bytes_pending ON file_transfers (status_changed) WHERE bytes_pending;
