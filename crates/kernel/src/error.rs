/// The kinds of failure every contract error maps onto. The HTTP status of each kind is
/// decided here, once, so that a module error means the same thing in every topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is malformed or violates a rule (400).
    Validation,
    /// No valid credentials (401).
    Unauthenticated,
    /// Valid credentials, not enough rights (403).
    Forbidden,
    /// Does not exist, or is not the caller's (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// The body is larger than allowed (413).
    PayloadTooLarge,
    /// An idempotency key was reused with another request (422).
    IdempotencyMismatch,
    /// Too many requests (429).
    RateLimited,
    /// A dependency is down or overloaded; retrying later may succeed (503).
    Unavailable,
    /// A dependency did not answer in time (504).
    Timeout,
    /// A bug or an unexpected failure; details are logged, never returned (500).
    Internal,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::Validation => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::IdempotencyMismatch => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
            ErrorKind::Internal => 500,
        }
    }

    /// Whether the detail of such an error may be shown to a client.
    pub fn is_client_error(self) -> bool {
        self.status() < 500
    }
}

/// Implemented by each contract's error enum, so one place (the `rpc` crate) can turn any of
/// them into the public error envelope.
pub trait ContractError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> ErrorKind;
    /// A stable snake_case code clients may match on, e.g. `product_not_found`.
    fn code(&self) -> &'static str;
    /// How long the caller should wait before trying again (HTTP `Retry-After`, RFC 9110
    /// section 10.2.3), for errors that say so.
    fn retry_after_secs(&self) -> Option<u64> {
        None
    }
    /// For an outage (kind `Unavailable` or `Timeout`): the module that failed, which may be
    /// one the contract's module called rather than the module itself, so that logs name
    /// the module to look at.
    fn failed_module(&self) -> Option<&str> {
        None
    }
}

/// A contract error that a transport or a resilience edge can produce on its own, without
/// the callee: every error declared with [`contract_error!`](crate::contract_error) is one.
pub trait TransportError: ContractError {
    /// No instance could take the call: none healthy, the circuit open, or the callee full.
    fn unavailable() -> Self;
    /// No answer within the caller's deadline.
    fn timeout() -> Self;
    /// The call could not be encoded or its answer read: a bug, logged, never shown.
    fn internal(message: String) -> Self;
}
