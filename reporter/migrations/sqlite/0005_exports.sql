CREATE TABLE exports (
    account TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    host TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (account, sha256)
);
CREATE TABLE export_links (
    digest TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    downloads BIGINT NOT NULL
)
