-- Set when orders confirms the order a payment paid for: from then on a refund request
-- for it is refused (orders asks for refunds only for cancelled orders).
ALTER TABLE payments ADD COLUMN order_confirmed BIGINT NOT NULL DEFAULT 0;
