-- The W3C `traceparent` of the span that ingested an event (NULL when it was not traced), so
-- that every delivery attempt continues the trace of the request that caused the event. It is
-- kept beside the payload, not in it: subscribers get Altinn's CloudEvent unchanged, and the
-- trace travels in the webhook POST's `traceparent` header.
ALTER TABLE events ADD COLUMN traceparent TEXT NULL;
