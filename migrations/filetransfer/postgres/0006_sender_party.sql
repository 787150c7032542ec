-- The sender as the client wrote it at initialize (`0192:<orgnr>` or the organisation URN):
-- Altinn echoes it back in that form. Rows from before have none and are shown as `0192:`.
ALTER TABLE file_transfers ADD COLUMN sender_party TEXT NULL;
