CREATE TABLE closures (
    account TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    state_since BIGINT NOT NULL,
    cooling_off_until BIGINT NOT NULL,
    offline_method TEXT,
    offline_evidence TEXT,
    history TEXT NOT NULL
);
CREATE TABLE erasure_results (
    account TEXT NOT NULL,
    phase TEXT NOT NULL,
    host TEXT NOT NULL,
    done BIGINT NOT NULL,
    report_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    digest TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (account, phase, host)
)
