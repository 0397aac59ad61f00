use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentsError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("payment not found")]
    PaymentNotFound,
    #[error("authentication is required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("payments is unavailable")]
    Unavailable,
    #[error("payments did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for PaymentsError {
    fn kind(&self) -> ErrorKind {
        match self {
            PaymentsError::InvalidInput(_) => ErrorKind::Validation,
            PaymentsError::PaymentNotFound => ErrorKind::NotFound,
            PaymentsError::Unauthenticated => ErrorKind::Unauthenticated,
            PaymentsError::Forbidden => ErrorKind::Forbidden,
            PaymentsError::Unavailable => ErrorKind::Unavailable,
            PaymentsError::Timeout => ErrorKind::Timeout,
            PaymentsError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PaymentsError::InvalidInput(_) => "invalid_input",
            PaymentsError::PaymentNotFound => "payment_not_found",
            PaymentsError::Unauthenticated => "unauthenticated",
            PaymentsError::Forbidden => "forbidden",
            PaymentsError::Unavailable => "unavailable",
            PaymentsError::Timeout => "timeout",
            PaymentsError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for PaymentsError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => PaymentsError::Unauthenticated,
            AccessDenied::Forbidden => PaymentsError::Forbidden,
        }
    }
}
