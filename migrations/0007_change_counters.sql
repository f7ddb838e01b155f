-- Every change to clients or to the revoked access tokens bumps its counter in the same
-- transaction. Running instances read the counters every second and keep both in memory in
-- between, so that the token endpoint and introspection need no query for them; a change
-- made anywhere (the CLI, another instance) reaches every instance within ~2 seconds.
CREATE TABLE change_counters (
    name    TEXT PRIMARY KEY,
    counter BIGINT NOT NULL
);
INSERT INTO change_counters (name, counter) VALUES ('clients', 0), ('revoked_access_tokens', 0);
