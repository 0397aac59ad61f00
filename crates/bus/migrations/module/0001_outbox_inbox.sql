-- Installed in every module database that publishes or consumes events. Tracked in
-- `_bus_migrations`, apart from the module's own `_sqlx_migrations`.

-- Events written in the same transaction as the state change they announce; the relay
-- publishes them and only then sets `sent_at`.
CREATE TABLE bus_outbox (
    id          TEXT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    envelope    TEXT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX bus_outbox_unsent ON bus_outbox (sent_at, occurred_at, id);

-- Events this database's module has handled, written in the same transaction as the
-- effect, so a redelivered event finds its id here and has no second effect.
CREATE TABLE bus_inbox (
    consumer   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    handled_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX bus_inbox_age ON bus_inbox (handled_at);
