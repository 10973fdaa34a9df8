-- The file_integrity baselines' hashes as the reporter last saw them, per host
-- and check: a baseline rewritten on a host (even by root) leaves a trace here
-- and in the audit log that the host cannot rewrite.
CREATE TABLE baselines (
    host TEXT NOT NULL,
    control_id TEXT NOT NULL,
    check_id TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    previous_sha256 TEXT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    changes BIGINT NOT NULL,
    PRIMARY KEY (host, control_id, check_id)
)
