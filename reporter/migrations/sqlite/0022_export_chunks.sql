-- Issue 22 item 6: export archives live in the database, in chunks of at
-- most 1 MiB, so that every reporter sharing it serves them. An upload
-- writes its chunks under a fresh `upload` id before its `exports` row
-- names it. Chunks that no row names are an interrupted upload, swept later.
CREATE TABLE export_chunks (
    upload TEXT NOT NULL,
    n BIGINT NOT NULL,
    data BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (upload, n)
);
ALTER TABLE exports ADD COLUMN upload TEXT
