//! Events identity publishes (see the event catalogue in ARCHITECTURE.md).

use kernel::Event;
use kernel::{Email, UserId};
use serde::{Deserialize, Serialize};

/// `identity.user_registered`, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: Email,
    pub name: String,
}

impl Event for UserRegistered {
    const TYPE: &'static str = "identity.user_registered";
}

/// `identity.registration_attempted`, version 1: someone tried to register with the email
/// of an existing account. Registration answers alike either way, so the owner, not the
/// caller, learns of it (OWASP Authentication Cheat Sheet, account enumeration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationAttempted {
    /// The existing account.
    pub user_id: UserId,
}

impl Event for RegistrationAttempted {
    const TYPE: &'static str = "identity.registration_attempted";
}
