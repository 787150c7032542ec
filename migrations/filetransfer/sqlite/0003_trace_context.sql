-- The W3C traceparent of the request that caused an event, carried to the bus message's
-- headers so the trace follows the event into the services that consume it.
ALTER TABLE outbox ADD COLUMN traceparent TEXT NULL;
