-- Issue 22 items 3-5: report bodies are stored zstd-compressed (about 17x
-- smaller for a papyrs report), so the one ingest writer copies and syncs a
-- tenth of the bytes and a host costs a tenth of the disk. A new row has
-- `body = ''` and its bytes in `body_zstd` (one zstd frame of the JSON as
-- posted), while a row from before this migration keeps its text in `body` and
-- `body_zstd` NULL. `Store::report_body` reads both.
ALTER TABLE reports ADD COLUMN body_zstd BLOB
