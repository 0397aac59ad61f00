kernel::contract_error! {
    /// What can go wrong when calling cart: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum CartError for "cart" {
        #[error("product not found")]
        ProductNotFound => NotFound, "product_not_found";
        #[error("a cart holds at most {0} different products")]
        CartFull(usize) => Conflict, "cart_full";
    }
}
