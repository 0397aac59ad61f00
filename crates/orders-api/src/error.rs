kernel::contract_error! {
    /// What can go wrong when calling orders: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum OrdersError for "orders" {
        #[error("the Idempotency-Key header is required")]
        IdempotencyKeyRequired => Validation, "idempotency_key_required";
        #[error("the cart is empty")]
        CartEmpty => Conflict, "cart_empty";
        #[error("order not found")]
        OrderNotFound => NotFound, "order_not_found";
        #[error("this Idempotency-Key was used with another request")]
        IdempotencyKeyReused => IdempotencyMismatch, "idempotency_key_reused";
        #[error("a request with this Idempotency-Key is in progress")]
        IdempotencyKeyInUse => Conflict, "idempotency_key_in_use";
    }
}
