use kernel::{AccessDenied, ContractError, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("email or password is wrong")]
    InvalidCredentials,
    /// Too many failed logins for this account lately: wait before trying again.
    #[error("too many failed logins for this account; try again in {retry_after_s} s")]
    TooManyAttempts { retry_after_s: u64 },
    #[error("user not found")]
    UserNotFound,
    #[error("authentication is required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    #[error("identity is unavailable")]
    Unavailable,
    #[error("identity did not answer in time")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ContractError for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::InvalidInput(_) => ErrorKind::Validation,
            IdentityError::EmailTaken => ErrorKind::Conflict,
            IdentityError::InvalidCredentials | IdentityError::Unauthenticated => {
                ErrorKind::Unauthenticated
            }
            IdentityError::UserNotFound => ErrorKind::NotFound,
            IdentityError::TooManyAttempts { .. } => ErrorKind::RateLimited,
            IdentityError::Forbidden => ErrorKind::Forbidden,
            IdentityError::Unavailable => ErrorKind::Unavailable,
            IdentityError::Timeout => ErrorKind::Timeout,
            IdentityError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            IdentityError::InvalidInput(_) => "invalid_input",
            IdentityError::EmailTaken => "email_taken",
            IdentityError::InvalidCredentials => "invalid_credentials",
            IdentityError::UserNotFound => "user_not_found",
            IdentityError::TooManyAttempts { .. } => "too_many_attempts",
            IdentityError::Unauthenticated => "unauthenticated",
            IdentityError::Forbidden => "forbidden",
            IdentityError::Unavailable => "unavailable",
            IdentityError::Timeout => "timeout",
            IdentityError::Internal(_) => "internal",
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            IdentityError::TooManyAttempts { retry_after_s } => Some(*retry_after_s),
            _ => None,
        }
    }
}

impl From<AccessDenied> for IdentityError {
    fn from(a: AccessDenied) -> Self {
        match a {
            AccessDenied::Unauthenticated => IdentityError::Unauthenticated,
            AccessDenied::Forbidden => IdentityError::Forbidden,
        }
    }
}

impl From<kernel::TextError> for IdentityError {
    fn from(e: kernel::TextError) -> Self {
        IdentityError::InvalidInput(e.to_string())
    }
}
