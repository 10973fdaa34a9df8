-- Issue 22, the views: a counter the ingest transaction bumps
-- (`fleet_state::bump_generation`), so that a reader caches what it built
-- from `latest_results` and `latest_hosts` until the next ingest commit. It
-- lives in the database, so reporters sharing one PostgreSQL see each
-- other's commits.
CREATE TABLE fleet_generation (
    id INTEGER PRIMARY KEY,
    n BIGINT NOT NULL
);
INSERT INTO fleet_generation (id, n) VALUES (1, 0)
