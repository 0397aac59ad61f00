use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("product not found")]
    ProductNotFound,
    #[error("a cart holds at most {0} different products")]
    CartFull(usize),
    #[error("authentication is required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("cart is unavailable")]
    Unavailable,
    #[error("cart did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for CartError {
    fn kind(&self) -> ErrorKind {
        match self {
            CartError::InvalidInput(_) => ErrorKind::Validation,
            CartError::ProductNotFound => ErrorKind::NotFound,
            CartError::CartFull(_) => ErrorKind::Conflict,
            CartError::Unauthenticated => ErrorKind::Unauthenticated,
            CartError::Forbidden => ErrorKind::Forbidden,
            CartError::Unavailable => ErrorKind::Unavailable,
            CartError::Timeout => ErrorKind::Timeout,
            CartError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            CartError::InvalidInput(_) => "invalid_input",
            CartError::ProductNotFound => "product_not_found",
            CartError::CartFull(_) => "cart_full",
            CartError::Unauthenticated => "unauthenticated",
            CartError::Forbidden => "forbidden",
            CartError::Unavailable => "unavailable",
            CartError::Timeout => "timeout",
            CartError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for CartError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => CartError::Unauthenticated,
            AccessDenied::Forbidden => CartError::Forbidden,
        }
    }
}

impl From<kernel::TextError> for CartError {
    fn from(e: kernel::TextError) -> Self {
        CartError::InvalidInput(e.to_string())
    }
}
