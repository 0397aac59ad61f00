-- Only product ids and quantities: names and prices are catalog's and read at display time.
CREATE TABLE cart_items (
    user_id    TEXT NOT NULL,
    product_id TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    added_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
