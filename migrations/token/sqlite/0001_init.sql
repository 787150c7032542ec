-- Token service: OAuth2 clients, their public keys, seen assertion ids, signing keys.
-- Times are Unix seconds so the SQL is the same on PostgreSQL and SQLite.

CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    org_number  TEXT NOT NULL,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,          -- JSON array of strings
    created_at  INTEGER NOT NULL
);

CREATE TABLE client_keys (
    client_id   TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    kid         TEXT NOT NULL,
    jwk         TEXT NOT NULL,          -- the public JWK as JSON
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, kid)
);

-- An assertion id is accepted once per client; the primary key makes the check atomic
-- across every replica sharing this database.
CREATE TABLE used_assertions (
    client_id   TEXT NOT NULL,
    jti         TEXT NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX used_assertions_expiry ON used_assertions (expires_at);

-- Generation is the rotation order; its uniqueness lets replicas race to add the next key safely.
CREATE TABLE signing_keys (
    generation    INTEGER PRIMARY KEY,
    kid           TEXT NOT NULL UNIQUE,
    private_key   TEXT NOT NULL,        -- PKCS#8 PEM
    activates_at  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);
