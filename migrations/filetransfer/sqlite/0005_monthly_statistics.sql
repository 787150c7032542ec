-- The monthly statistics are counted from the histories of the month: recipient rows by time,
-- and Published transfer rows by time. The per-resource month index served the earlier
-- statistics, which nothing runs any more.
CREATE INDEX recipient_history_at ON recipient_history (at);
CREATE INDEX transfer_history_status_at ON transfer_history (status, at);
DROP INDEX file_transfers_resource_month;
