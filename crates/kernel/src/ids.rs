//! Typed ids. Every id is a UUID (v7 when we mint it, so ids sort by creation time).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Parses a UUID from text, as found in a path segment or a JSON string.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// Mints a new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
            pub fn parse(s: &str) -> Option<Self> {
                parse_uuid(s).map(Self)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A registered user.
    UserId
);
id_type!(
    /// A catalog product; inventory and cart refer to products by this id only.
    ProductId
);
id_type!(
    /// An order; also the idempotency key of its reservation and its payment.
    OrderId
);
id_type!(
    /// A payment (one per order).
    PaymentId
);
id_type!(
    /// A notification written for a user.
    NotificationId
);
id_type!(
    /// An event on the bus; consumers remember the ids they handled (the inbox).
    EventId
);

/// A UUID as [`uuid::Uuid`]'s `Display` writes it (RFC 9562 section 4: lowercase, hyphenated).
const UUID_PATTERN: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/// The listings paged by an id, newest first or last: a cursor carries the last id seen.
macro_rules! id_cursor {
    ($($name:ident => $list:literal),* $(,)?) => {$(
        impl crate::CursorKey for $name {
            const LIST: &'static str = $list;
            const PATTERN: &'static str = UUID_PATTERN;
            fn to_text(&self) -> String {
                self.to_string()
            }
            fn from_text(s: &str) -> Option<Self> {
                Self::parse(s)
            }
        }
    )*};
}

id_cursor!(
    ProductId => "products",
    OrderId => "orders",
    PaymentId => "payments",
    NotificationId => "notifications",
);

crate::cursor_param!(
    /// The `cursor` of the product listing.
    pub ProductCursor for ProductId
);
crate::cursor_param!(
    /// The `cursor` of the order listing.
    pub OrderCursor for OrderId
);
crate::cursor_param!(
    /// The `cursor` of the payment listing.
    pub PaymentCursor for PaymentId
);
crate::cursor_param!(
    /// The `cursor` of the notification listing.
    pub NotificationCursor for NotificationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = ProductId::new();
        assert_eq!(ProductId::parse(&id.to_string()), Some(id));
        assert_eq!(ProductId::parse("not-a-uuid"), None);
        assert_eq!(ProductId::parse(""), None);
    }

    #[test]
    fn minted_ids_sort_by_creation() {
        let a = UserId::new();
        let b = UserId::new();
        assert!(a < b);
    }
}
