-- Assertions without a jti (Maskinporten only recommends one) are single-use by the SHA-256 of
-- their signed part, accepted once per client like a jti and forgotten after they expire.
-- A table of their own rather than rows in used_assertions: a client chooses its jti freely,
-- so a digest stored there could collide with one, and used_assertions stays as replicas still
-- running the previous version use it.
CREATE TABLE used_assertion_digests (
    client_id   TEXT NOT NULL,
    digest      TEXT NOT NULL,          -- lowercase hex of SHA-256(header.payload)
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (client_id, digest)
);
CREATE INDEX used_assertion_digests_expiry ON used_assertion_digests (expires_at);
