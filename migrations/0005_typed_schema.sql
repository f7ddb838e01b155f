-- One time unit everywhere: rate-limit counters' expiry becomes Unix seconds (rounded up),
-- like every other time column. And the clients table enforces what the code assumed: a client
-- authenticates with exactly one of a secret hash and a public JWK, has a grant type, and a
-- lifetime of its own is positive. Portable SQL, like 0001: SQLite cannot add a CHECK to a
-- table, so clients (and client_assertions, which refers to it) are rebuilt and their rows
-- copied.

UPDATE rate_limits SET expires_at = (expires_at + 999) / 1000 WHERE expires_at IS NOT NULL;

CREATE TABLE clients_v5 (
    id                TEXT PRIMARY KEY,
    secret_hash       TEXT,
    public_jwk        TEXT,
    grant_types       TEXT NOT NULL CHECK (grant_types <> ''),
    scopes            TEXT NOT NULL,
    audiences         TEXT NOT NULL,
    access_token_ttl  BIGINT CHECK (access_token_ttl > 0),
    created_at        BIGINT NOT NULL,
    secret_rotated_at BIGINT,
    CHECK ((secret_hash IS NULL) <> (public_jwk IS NULL))
);
INSERT INTO clients_v5 (id, secret_hash, public_jwk, grant_types, scopes, audiences,
                        access_token_ttl, created_at, secret_rotated_at)
    SELECT id, secret_hash, public_jwk, grant_types, scopes, audiences, access_token_ttl,
           created_at, secret_rotated_at
    FROM clients;

CREATE TABLE client_assertions_v5 (
    client_id  TEXT NOT NULL REFERENCES clients_v5 (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
INSERT INTO client_assertions_v5 (client_id, jti, expires_at)
    SELECT client_id, jti, expires_at FROM client_assertions;

DROP TABLE client_assertions;
DROP TABLE clients;
ALTER TABLE clients_v5 RENAME TO clients;
ALTER TABLE client_assertions_v5 RENAME TO client_assertions;
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
