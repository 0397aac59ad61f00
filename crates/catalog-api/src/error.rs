use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("product not found")]
    ProductNotFound,
    #[error("authentication is required")]
    Unauthenticated,
    #[error("this action needs the admin role")]
    Forbidden,
    #[error("catalog is unavailable")]
    Unavailable,
    #[error("catalog did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for CatalogError {
    fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::InvalidInput(_) => ErrorKind::Validation,
            CatalogError::ProductNotFound => ErrorKind::NotFound,
            CatalogError::Unauthenticated => ErrorKind::Unauthenticated,
            CatalogError::Forbidden => ErrorKind::Forbidden,
            CatalogError::Unavailable => ErrorKind::Unavailable,
            CatalogError::Timeout => ErrorKind::Timeout,
            CatalogError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            CatalogError::InvalidInput(_) => "invalid_input",
            CatalogError::ProductNotFound => "product_not_found",
            CatalogError::Unauthenticated => "unauthenticated",
            CatalogError::Forbidden => "forbidden",
            CatalogError::Unavailable => "unavailable",
            CatalogError::Timeout => "timeout",
            CatalogError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for CatalogError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => CatalogError::Unauthenticated,
            AccessDenied::Forbidden => CatalogError::Forbidden,
        }
    }
}

impl From<kernel::TextError> for CatalogError {
    fn from(e: kernel::TextError) -> Self {
        CatalogError::InvalidInput(e.to_string())
    }
}
