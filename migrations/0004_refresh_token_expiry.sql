-- Housekeeping deletes expired refresh tokens every few minutes: find them without a scan.
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
