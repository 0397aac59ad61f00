use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationsError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("authentication is required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("notifications is unavailable")]
    Unavailable,
    #[error("notifications did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for NotificationsError {
    fn kind(&self) -> ErrorKind {
        match self {
            NotificationsError::InvalidInput(_) => ErrorKind::Validation,
            NotificationsError::Unauthenticated => ErrorKind::Unauthenticated,
            NotificationsError::Forbidden => ErrorKind::Forbidden,
            NotificationsError::Unavailable => ErrorKind::Unavailable,
            NotificationsError::Timeout => ErrorKind::Timeout,
            NotificationsError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            NotificationsError::InvalidInput(_) => "invalid_input",
            NotificationsError::Unauthenticated => "unauthenticated",
            NotificationsError::Forbidden => "forbidden",
            NotificationsError::Unavailable => "unavailable",
            NotificationsError::Timeout => "timeout",
            NotificationsError::Internal(_) => "internal",
        }
    }
}

impl From<AccessDenied> for NotificationsError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => NotificationsError::Unauthenticated,
            AccessDenied::Forbidden => NotificationsError::Forbidden,
        }
    }
}
