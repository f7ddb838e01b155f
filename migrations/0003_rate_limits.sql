-- Rate-limit counters shared by every instance on this database (ISSUER_RATE_LIMIT_STORE =
-- database). A value is a small opaque state (a GCRA arrival time, a back-off record) that
-- instances replace by compare-and-swap. expires_at (Unix milliseconds) only tells the
-- housekeeping which rows no longer matter; NULL keeps a row.
CREATE TABLE rate_limits (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    expires_at BIGINT
);
CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);
