-- Registered (confidential) OAuth clients, private_key_jwt replay protection, and revoked
-- access tokens. Portable SQL, like 0001.

-- A client authenticates with a secret (stored only as its SHA-256) or with a signed
-- assertion checked against its public JWK (private_key_jwt); exactly one of the two is set.
-- Lists (grant types, scopes, audiences) are space-separated, as OAuth writes scopes.
CREATE TABLE clients (
    id                TEXT PRIMARY KEY,
    secret_hash       TEXT,
    public_jwk        TEXT,
    grant_types       TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    audiences         TEXT NOT NULL,
    access_token_ttl  BIGINT,
    created_at        BIGINT NOT NULL,
    secret_rotated_at BIGINT
);

-- The jti of every accepted client assertion until it expires: a replay is refused.
CREATE TABLE client_assertions (
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- Access tokens revoked at /oauth2/revoke, until they expire: introspection reports them
-- inactive (offline verifiers cannot know).
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_access_tokens_expiry ON revoked_access_tokens (expires_at);
