kernel::contract_error! {
    /// What can go wrong when calling notifications: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum NotificationsError for "notifications" {
    }
}
