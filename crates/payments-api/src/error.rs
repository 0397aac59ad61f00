kernel::contract_error! {
    /// What can go wrong when calling payments: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum PaymentsError for "payments" {
        #[error("payment not found")]
        PaymentNotFound => NotFound, "payment_not_found";
    }
}
