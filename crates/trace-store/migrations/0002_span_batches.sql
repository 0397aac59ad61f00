-- A row per batch of spans (an OTLP ExportTraceServiceRequest, protobuf-encoded) instead
-- of a row per span: the index of traces now lives in memory, rebuilt from these rows.
-- Traces stored by the first layout are not carried over (they are evicted within
-- 10,000 traces anyway): the store starts empty once.
DROP TABLE spans;
DROP TABLE traces;

CREATE TABLE span_batches (
    seq INTEGER PRIMARY KEY,
    spans BLOB NOT NULL
);
