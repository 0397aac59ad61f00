kernel::contract_error! {
    /// What can go wrong when calling catalog: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum CatalogError for "catalog" {
        #[error("product not found")]
        ProductNotFound => NotFound, "product_not_found";
    }
    forbidden = "this action needs the admin role";
}
