CREATE TABLE policies (
    sha256 TEXT NOT NULL,
    yaml TEXT NOT NULL,
    signature TEXT NOT NULL,
    published_by TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (sha256, published_at)
)
