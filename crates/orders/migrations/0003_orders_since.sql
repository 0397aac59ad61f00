-- When this shop's orders began (its first start, or its earliest order if older): no
-- daily summary covers a day that ended before then. One row, written by `Orders::new`.
CREATE TABLE orders_since (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    created_at BIGINT NOT NULL
);
