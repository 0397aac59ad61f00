-- The embedded bus: a durable log of messages and, per subscriber, the deliveries still
-- owed (the same model as a JetStream stream with one durable consumer per subscriber).

CREATE TABLE bus_messages (
    id           TEXT PRIMARY KEY,
    event_type   TEXT NOT NULL,
    source       TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    published_at BIGINT NOT NULL,
    envelope     TEXT NOT NULL
);
CREATE INDEX bus_messages_age ON bus_messages (published_at);

-- Which event types each subscriber wants; a publish owes a delivery to each of them.
CREATE TABLE bus_subscriptions (
    subscriber TEXT NOT NULL,
    event_type TEXT NOT NULL,
    PRIMARY KEY (subscriber, event_type)
);

-- A delivery is owed until acknowledged. `attempts` counts handler runs; `lease_until`
-- keeps one in flight from being handed out twice; `next_at` is when it is due (backoff).
CREATE TABLE bus_deliveries (
    subscriber  TEXT NOT NULL,
    event_id    TEXT NOT NULL REFERENCES bus_messages (id),
    attempts    BIGINT NOT NULL,
    next_at     BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    last_error  TEXT,
    PRIMARY KEY (subscriber, event_id)
);
CREATE INDEX bus_deliveries_due ON bus_deliveries (subscriber, next_at);

-- Deliveries that failed `max_deliver` times (or were refused outright), parked for an
-- operator to look at and replay.
CREATE TABLE bus_dead_letters (
    subscriber TEXT NOT NULL,
    event_id   TEXT NOT NULL REFERENCES bus_messages (id),
    attempts   BIGINT NOT NULL,
    last_error TEXT NOT NULL,
    dead_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber, event_id)
);
