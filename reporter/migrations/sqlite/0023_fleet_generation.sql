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
;
-- The views read every latest result once per generation, per control and
-- status: an index that covers that read (the table holds each result's
-- checks, and reading it through the old index was a random access per
-- result: seconds at 200,000 results). The ingest upsert already rewrote
-- this index's entries (it sets `status`), so the wider entries cost bytes,
-- not writes.
DROP INDEX latest_results_control;
CREATE INDEX latest_results_control ON latest_results (control_id, status, host, finished_at, title)
