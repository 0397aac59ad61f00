use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InventoryError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("product not found")]
    ProductNotFound,
    #[error("no reservation for this order")]
    ReservationNotFound,
    #[error("the reservation is {0} and cannot change that way")]
    ReservationConflict(String),
    #[error("authentication is required")]
    Unauthenticated,
    #[error("this action needs the admin role")]
    Forbidden,
    #[error("inventory is unavailable")]
    Unavailable,
    #[error("inventory did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for InventoryError {
    fn kind(&self) -> ErrorKind {
        match self {
            InventoryError::InvalidInput(_) => ErrorKind::Validation,
            InventoryError::ProductNotFound | InventoryError::ReservationNotFound => {
                ErrorKind::NotFound
            }
            InventoryError::ReservationConflict(_) => ErrorKind::Conflict,
            InventoryError::Unauthenticated => ErrorKind::Unauthenticated,
            InventoryError::Forbidden => ErrorKind::Forbidden,
            InventoryError::Unavailable => ErrorKind::Unavailable,
            InventoryError::Timeout => ErrorKind::Timeout,
            InventoryError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            InventoryError::InvalidInput(_) => "invalid_input",
            InventoryError::ProductNotFound => "product_not_found",
            InventoryError::ReservationNotFound => "reservation_not_found",
            InventoryError::ReservationConflict(_) => "reservation_conflict",
            InventoryError::Unauthenticated => "unauthenticated",
            InventoryError::Forbidden => "forbidden",
            InventoryError::Unavailable => "unavailable",
            InventoryError::Timeout => "timeout",
            InventoryError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for InventoryError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => InventoryError::Unauthenticated,
            AccessDenied::Forbidden => InventoryError::Forbidden,
        }
    }
}

impl From<kernel::TextError> for InventoryError {
    fn from(e: kernel::TextError) -> Self {
        InventoryError::InvalidInput(e.to_string())
    }
}
