-- One row per finished span (OTLP's Span, flattened). Attributes, events and links are
-- JSON arrays; ids are lowercase hex as in W3C trace context.
CREATE TABLE spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    service_name TEXT NOT NULL,
    start_unix_nano BIGINT NOT NULL,
    end_unix_nano BIGINT NOT NULL,
    status_code TEXT NOT NULL,
    status_message TEXT NOT NULL,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);

-- One row per trace, for listing and eviction: when it was first stored, its extent, and
-- whether any span failed.
CREATE TABLE traces (
    trace_id TEXT PRIMARY KEY,
    stored_seq BIGINT NOT NULL,
    start_unix_nano BIGINT NOT NULL,
    end_unix_nano BIGINT NOT NULL,
    span_count BIGINT NOT NULL,
    error BIGINT NOT NULL
);
CREATE INDEX traces_by_seq ON traces (stored_seq);
CREATE INDEX traces_by_start ON traces (start_unix_nano);
