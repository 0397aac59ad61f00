-- The simulated card provider's own records, in its own database: it stands for an
-- external service (Stripe), so nothing here shares a transaction with payments.

-- Every charge the provider made, with the order it was for (as Stripe's metadata). Not
-- unique per order on purpose: this is the ledger that shows whether a charge happened twice.
CREATE TABLE provider_charges (
    charge_id   TEXT PRIMARY KEY,
    order_ref   TEXT NOT NULL,
    token       TEXT NOT NULL,
    amount      BIGINT NOT NULL,
    currency    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    refunded_at BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX provider_charges_by_order ON provider_charges (order_ref);

-- The provider's idempotency keys: a request with a known key gets the first answer.
CREATE TABLE provider_idempotency (
    idempotency_key TEXT PRIMARY KEY,
    charge_id       TEXT NOT NULL REFERENCES provider_charges (charge_id),
    created_at      BIGINT NOT NULL
);
