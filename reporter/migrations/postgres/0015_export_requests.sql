-- Issue 21: exports on request, outside any closure.
CREATE TABLE export_requests (
    account TEXT PRIMARY KEY,
    requested_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    sha256 TEXT,
    host TEXT,
    proved_at BIGINT,
    ended_at BIGINT
)
