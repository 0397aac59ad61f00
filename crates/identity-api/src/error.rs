kernel::contract_error! {
    /// What can go wrong when calling identity: its own failures, and the shared core every
    /// contract has (invalid input, unauthenticated, forbidden, unavailable, timeout,
    /// internal).
    pub enum IdentityError for "identity" {
        #[error("an account with this email already exists")]
        EmailTaken => Conflict, "email_taken";
        #[error("email or password is wrong")]
        InvalidCredentials => Unauthenticated, "invalid_credentials";
        /// Too many failed logins for this account lately: wait before trying again.
        #[error("too many failed logins for this account; try again in {retry_after_s} s")]
        TooManyAttempts { retry_after_s: u64 } => RateLimited, "too_many_attempts";
        #[error("user not found")]
        UserNotFound => NotFound, "user_not_found";
    }
    retry_after = TooManyAttempts.retry_after_s;
}
