-- Orders payments knows were cancelled (from `orders.order_cancelled`): a refund request is
-- honoured only for one of these, of the same user.
CREATE TABLE cancelled_orders (
    order_id     TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    cancelled_at BIGINT NOT NULL
);
