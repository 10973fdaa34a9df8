CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    contact TEXT,
    summary TEXT NOT NULL,
    description TEXT NOT NULL,
    affected TEXT,
    source_addr TEXT NOT NULL
);
CREATE INDEX incidents_created ON incidents (created_at);
CREATE TABLE incident_events (
    incident_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (incident_id, seq)
);
CREATE TABLE web_sessions (
    lookup TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    user_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE login_links (
    digest TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    expires_at BIGINT NOT NULL
)
