-- The UTC days whose sales summary has been sent: one row per day, so a job run twice
-- (or by two processes) sends it once.
CREATE TABLE sales_summaries (
    day     TEXT PRIMARY KEY,
    sent_at BIGINT NOT NULL
);
