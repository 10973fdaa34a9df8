-- Issue 22 item 4: `control_results` held one row per control of every stored
-- report, written by every ingest (about 7 rows and 3 index entries per
-- report, the most rows of any table) and read by nothing since the views
-- read the maintained state (`latest_results`, `control_daily`, migration
-- 0021). Each report's results stay in its body while it is kept.
DROP TABLE control_results
