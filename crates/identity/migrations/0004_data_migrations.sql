-- Changes to stored data that code makes once (a name each), beside the schema's.
CREATE TABLE data_migrations (
    name       TEXT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);
