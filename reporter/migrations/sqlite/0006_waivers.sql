CREATE TABLE waivers (
    id TEXT PRIMARY KEY,
    control TEXT NOT NULL,
    body TEXT NOT NULL,
    expires TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_by TEXT
)
