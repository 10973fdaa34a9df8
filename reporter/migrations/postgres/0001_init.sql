CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    roles TEXT NOT NULL,
    interval_secs BIGINT NOT NULL,
    token_lookup TEXT NOT NULL UNIQUE,
    token_digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    last_seen BIGINT
);
CREATE INDEX agents_host ON agents (host);
CREATE TABLE reports (
    report_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    host TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    summary TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX reports_host_time ON reports (host, finished_at);
CREATE TABLE control_results (
    report_id TEXT NOT NULL,
    host TEXT NOT NULL,
    control_id TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    finished_at BIGINT NOT NULL,
    PRIMARY KEY (report_id, control_id)
);
CREATE INDEX control_results_latest ON control_results (host, control_id, finished_at);
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT,
    token_lookup TEXT NOT NULL UNIQUE,
    token_digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);
