-- Per product: available + reserved + sold = adjusted (the sum of every restock), always.
CREATE TABLE stock (
    product_id TEXT PRIMARY KEY,
    available  BIGINT NOT NULL CHECK (available >= 0),
    reserved   BIGINT NOT NULL CHECK (reserved >= 0),
    sold       BIGINT NOT NULL CHECK (sold >= 0),
    adjusted   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE reservations (
    order_id      TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    short_product TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE reservation_lines (
    order_id   TEXT NOT NULL REFERENCES reservations (order_id),
    product_id TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
