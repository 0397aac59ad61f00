//! Events identity publishes. Delivered by the bus (built with checkout); the types are part
//! of the contract now so that subscribers can be written against them.

use bus::Event;
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
