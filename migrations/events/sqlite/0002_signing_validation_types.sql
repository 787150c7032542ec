-- Signed deliveries, a durable validation handshake schedule, and the event type for pull's
-- type filter.

-- The Standard Webhooks secret (`whsec_…`) of a subscription that asked for signed deliveries.
ALTER TABLE subscriptions ADD COLUMN signing_secret TEXT NULL;
-- Handshake attempts made so far, and when the next is due (NULL: validated, or given up). A
-- claimed handshake moves `next_validation` to its lease's end, so a crashed worker's handshake
-- comes back when the lease runs out.
ALTER TABLE subscriptions ADD COLUMN validation_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN next_validation BIGINT NULL;
UPDATE subscriptions SET next_validation = created WHERE NOT validated;
CREATE INDEX subscriptions_validation_due ON subscriptions (next_validation)
    WHERE next_validation IS NOT NULL;

ALTER TABLE events ADD COLUMN event_type TEXT NULL;
UPDATE events SET event_type = json_extract(payload, '$.type');
