-- The authorization-code flow (browser and native apps, OpenID Connect). Portable SQL, like
-- 0001.
--
-- Clients gain redirect URIs, whether they are public (no secret and no key: PKCE alone
-- protects their codes), first-party (no consent page; 0 or 1, as sqlx's Any driver reads no
-- SQLite BOOLEAN) and their ID-token algorithm. The
-- CHECK of 0005 (exactly one credential) becomes "at most one" (none only without
-- client_credentials), so clients is rebuilt again,
-- with client_assertions, which refers to it.
CREATE TABLE clients_v6 (
    id                        TEXT PRIMARY KEY,
    secret_hash               TEXT,
    public_jwk                TEXT,
    grant_types               TEXT NOT NULL CHECK (grant_types <> ''),
    scopes                    TEXT NOT NULL,
    audiences                 TEXT NOT NULL,
    access_token_ttl          BIGINT CHECK (access_token_ttl > 0),
    created_at                BIGINT NOT NULL,
    secret_rotated_at         BIGINT,
    redirect_uris             TEXT NOT NULL DEFAULT '',
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '',
    first_party               BIGINT NOT NULL DEFAULT 0 CHECK (first_party IN (0, 1)),
    id_token_alg              TEXT NOT NULL DEFAULT 'RS256' CHECK (id_token_alg IN ('RS256', 'EdDSA')),
    CHECK (secret_hash IS NULL OR public_jwk IS NULL),
    -- A public client has no credential, so it cannot act for itself.
    CHECK (secret_hash IS NOT NULL OR public_jwk IS NOT NULL OR grant_types NOT LIKE '%client_credentials%')
);
INSERT INTO clients_v6 (id, secret_hash, public_jwk, grant_types, scopes, audiences,
                        access_token_ttl, created_at, secret_rotated_at)
    SELECT id, secret_hash, public_jwk, grant_types, scopes, audiences, access_token_ttl,
           created_at, secret_rotated_at
    FROM clients;

CREATE TABLE client_assertions_v6 (
    client_id  TEXT NOT NULL REFERENCES clients_v6 (id) ON DELETE CASCADE,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
INSERT INTO client_assertions_v6 (client_id, jti, expires_at)
    SELECT client_id, jti, expires_at FROM client_assertions;

DROP TABLE client_assertions;
DROP TABLE clients;
ALTER TABLE clients_v6 RENAME TO clients;
ALTER TABLE client_assertions_v6 RENAME TO client_assertions;
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);

-- A browser's login at the hosted page. The cookie holds a random secret stored here only as
-- its SHA-256; id is public (the `sid` of ID tokens). Ended at logout, by logout-all, and with
-- its user.
CREATE TABLE login_sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);
CREATE INDEX login_sessions_user ON login_sessions (user_id);
CREATE INDEX login_sessions_expiry ON login_sessions (expires_at);

-- The refresh family a code was exchanged for remembers its login session: ending the login
-- session ends the tokens.
ALTER TABLE refresh_families ADD COLUMN login_session_id TEXT;
CREATE INDEX refresh_families_login_session ON refresh_families (login_session_id);

-- Authorization codes, stored as SHA-256 hashes, single use. family_id is the refresh family
-- the code was exchanged for: a second exchange ends it.
CREATE TABLE authorization_codes (
    code_hash        TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    login_session_id TEXT NOT NULL REFERENCES login_sessions (id) ON DELETE CASCADE,
    redirect_uri     TEXT NOT NULL,
    code_challenge   TEXT NOT NULL,
    scope            TEXT,
    nonce            TEXT,
    auth_time        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT,
    family_id        TEXT
);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

-- The scopes a user approved for a client, asked again only for more.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
