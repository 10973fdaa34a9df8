ALTER TABLE incidents ADD COLUMN severity TEXT;
ALTER TABLE incidents ADD COLUMN assignee TEXT;
ALTER TABLE incidents ADD COLUMN status_digest TEXT;
ALTER TABLE incidents ADD COLUMN breach_marked_at BIGINT;
ALTER TABLE incidents ADD COLUMN breach_notify_by BIGINT;
ALTER TABLE incident_events ADD COLUMN public BIGINT NOT NULL DEFAULT 0;
CREATE INDEX incidents_status_digest ON incidents (status_digest);
CREATE TABLE incident_links (
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (incident_id, kind, target)
);
CREATE TABLE incident_attachments (
    incident_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    scan TEXT NOT NULL,
    added_at BIGINT NOT NULL,
    added_by TEXT NOT NULL,
    PRIMARY KEY (incident_id, sha256)
)
