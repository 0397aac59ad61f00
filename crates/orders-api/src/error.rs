use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrdersError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("the Idempotency-Key header is required")]
    IdempotencyKeyRequired,
    #[error("the cart is empty")]
    CartEmpty,
    #[error("order not found")]
    OrderNotFound,
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is in progress")]
    IdempotencyKeyInUse,
    #[error("authentication is required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("orders is unavailable")]
    Unavailable,
    #[error("orders did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for OrdersError {
    fn kind(&self) -> ErrorKind {
        match self {
            OrdersError::InvalidInput(_) | OrdersError::IdempotencyKeyRequired => {
                ErrorKind::Validation
            }
            OrdersError::CartEmpty | OrdersError::IdempotencyKeyInUse => ErrorKind::Conflict,
            OrdersError::OrderNotFound => ErrorKind::NotFound,
            OrdersError::IdempotencyKeyReused => ErrorKind::IdempotencyMismatch,
            OrdersError::Unauthenticated => ErrorKind::Unauthenticated,
            OrdersError::Forbidden => ErrorKind::Forbidden,
            OrdersError::Unavailable => ErrorKind::Unavailable,
            OrdersError::Timeout => ErrorKind::Timeout,
            OrdersError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            OrdersError::InvalidInput(_) => "invalid_input",
            OrdersError::IdempotencyKeyRequired => "idempotency_key_required",
            OrdersError::CartEmpty => "cart_empty",
            OrdersError::OrderNotFound => "order_not_found",
            OrdersError::IdempotencyKeyReused => "idempotency_key_reused",
            OrdersError::IdempotencyKeyInUse => "idempotency_key_in_use",
            OrdersError::Unauthenticated => "unauthenticated",
            OrdersError::Forbidden => "forbidden",
            OrdersError::Unavailable => "unavailable",
            OrdersError::Timeout => "timeout",
            OrdersError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for OrdersError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => OrdersError::Unauthenticated,
            AccessDenied::Forbidden => OrdersError::Forbidden,
        }
    }
}
