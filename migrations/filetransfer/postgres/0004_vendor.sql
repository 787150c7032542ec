-- The vendor of each step a caller takes: the organisation of the token's Maskinporten client
-- (`consumer.ID`), as Altinn records it on the initialize and upload-start rows of a transfer
-- and on the download and confirm rows of a recipient. Steps the broker takes itself, and rows
-- written before this migration, have none (as Altinn's rows before its V0023).
ALTER TABLE transfer_history ADD COLUMN vendor TEXT NULL;
ALTER TABLE recipient_history ADD COLUMN vendor TEXT NULL;
