CREATE TABLE audit_key (
    id BIGINT PRIMARY KEY,
    public_key TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
