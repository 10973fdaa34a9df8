-- Issue 22, item 2: the fleet's state maintained at ingest, so that readers
-- never scan stored reports (see reporter/src/fleet_state.rs).
-- The latest result of every (host, control): newest by the agent's
-- finished_at, so a late spool delivery never rolls a host back. `checks` is
-- the control's checks in compact JSON (id, type, status, summary, findings,
-- waived_by): a host page shows them after the report itself is pruned.
CREATE TABLE latest_results (
    host TEXT NOT NULL,
    control_id TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    finished_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    report_id TEXT NOT NULL,
    checks TEXT NOT NULL,
    PRIMARY KEY (host, control_id)
);
CREATE INDEX latest_results_control ON latest_results (control_id, status, host);
-- One row per host: its newest report (staleness is judged from it at read
-- time) and its worst control status, for paginated host lists.
CREATE TABLE latest_hosts (
    host TEXT PRIMARY KEY,
    finished_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    report_id TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE INDEX latest_hosts_status ON latest_hosts (status, host);
-- Daily roll-ups per control: at the end of UTC day `day` (epoch ms of its
-- midnight, the reporter's receive time), `hosts` hosts' latest result of
-- `control_id` was `status`, `fresh` of them received that very day. A
-- control's rows are carried into a new day on its first change that day.
CREATE TABLE control_daily (
    control_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    status TEXT NOT NULL,
    hosts BIGINT NOT NULL,
    fresh BIGINT NOT NULL,
    PRIMARY KEY (control_id, day, status)
);
CREATE INDEX control_daily_day ON control_daily (day);
-- Backfill from the reports stored before this migration (their checks
-- arrive with each host's next report).
INSERT INTO latest_results (host, control_id, title, status, finished_at, received_at, report_id, checks)
SELECT cr.host, cr.control_id, MIN(cr.title), MIN(cr.status), cr.finished_at, MAX(r.received_at), MIN(cr.report_id), '[]'
FROM control_results cr
JOIN reports r ON r.report_id = cr.report_id
JOIN (SELECT host, control_id, MAX(finished_at) AS f FROM control_results GROUP BY host, control_id) l
  ON cr.host = l.host AND cr.control_id = l.control_id AND cr.finished_at = l.f
GROUP BY cr.host, cr.control_id, cr.finished_at;
INSERT INTO latest_hosts (host, finished_at, received_at, report_id, status)
SELECT r.host, r.finished_at, MAX(r.received_at), MIN(r.report_id), 'unknown'
FROM reports r
JOIN (SELECT host, MAX(finished_at) AS f FROM reports GROUP BY host) l ON r.host = l.host AND r.finished_at = l.f
GROUP BY r.host, r.finished_at;
UPDATE latest_hosts SET status = CASE
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host AND l.status = 'fail') THEN 'fail'
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host AND l.status = 'error') THEN 'error'
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host AND l.status = 'unknown') THEN 'unknown'
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host AND l.status = 'attested') THEN 'attested'
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host AND l.status = 'waived') THEN 'waived'
    WHEN EXISTS (SELECT 1 FROM latest_results l WHERE l.host = latest_hosts.host) THEN 'pass'
    ELSE 'unknown' END;
INSERT INTO control_daily (control_id, day, status, hosts, fresh)
SELECT l.control_id, m.d, l.status, COUNT(*), SUM(CASE WHEN l.received_at >= m.d THEN 1 ELSE 0 END)
FROM latest_results l, (SELECT (MAX(received_at) / 86400000) * 86400000 AS d FROM latest_results) m
GROUP BY l.control_id, m.d, l.status
