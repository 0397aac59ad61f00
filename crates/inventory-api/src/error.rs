kernel::contract_error! {
    /// What can go wrong when calling inventory: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum InventoryError for "inventory" {
        #[error("product not found")]
        ProductNotFound => NotFound, "product_not_found";
        #[error("no reservation for this order")]
        ReservationNotFound => NotFound, "reservation_not_found";
        #[error("the reservation is {0} and cannot change that way")]
        ReservationConflict(String) => Conflict, "reservation_conflict";
    }
    forbidden = "this action needs the admin role";
}
