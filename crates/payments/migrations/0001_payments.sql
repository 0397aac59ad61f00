-- One payment per order: the order id is the idempotency key of its charge.
CREATE TABLE payments (
    id                 TEXT PRIMARY KEY,
    order_id           TEXT NOT NULL UNIQUE,
    user_id            TEXT NOT NULL,
    status             TEXT NOT NULL,
    amount             BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    decline_reason     TEXT,
    provider_charge_id TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX payments_by_user ON payments (user_id, created_at);
