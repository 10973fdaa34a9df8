-- The advisory feed the reporter keeps for every host (patch_level with
-- `advisories: reporter`): one row, replaced by an admin's upload or the
-- configured fetch, each change audited.
CREATE TABLE advisory_feed (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    format TEXT NOT NULL,
    entries BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    source TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL
)
