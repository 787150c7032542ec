-- The organisation a subscription's consumer acts for. Consumers are named as Altinn names
-- callers (`/org/<code>` for a service owner, `/systemuser/<uuid>`, `/organisation/<orgnr>`),
-- so the organisation number that decides which events the consumer may receive is kept
-- beside the name. Every consumer so far was `/organisation/<orgnr>`.
ALTER TABLE subscriptions ADD COLUMN consumer_org TEXT NOT NULL DEFAULT '';
UPDATE subscriptions SET consumer_org = SUBSTR(consumer, 15) WHERE consumer LIKE '/organisation/%';
