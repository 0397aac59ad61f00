-- status is what the customer sees (pending, confirmed, cancelled); step is where the
-- saga is while pending (placed: waiting for stock; payment_requested: waiting for payment).
CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    status        TEXT NOT NULL,
    step          TEXT NOT NULL,
    cancel_reason TEXT,
    payment_token TEXT NOT NULL,
    total         BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    deadline_at   BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_by_deadline ON orders (status, deadline_at);

-- The cart as priced when the order was placed.
CREATE TABLE order_items (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    product_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL,
    line_total BIGINT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE order_history (
    order_id TEXT NOT NULL REFERENCES orders (id),
    seq      BIGINT NOT NULL,
    status   TEXT NOT NULL,
    step     TEXT NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (order_id, seq)
);

-- Per user, one key is one order: the request's fingerprint and the first answer.
CREATE TABLE idempotency_keys (
    user_id     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    response    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
