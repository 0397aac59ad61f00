//! Shared vocabulary of every module: typed ids, [`Money`], paging, the error kinds every
//! contract maps onto, and the request context that travels with each call.
//!
//! This crate does no I/O and knows no module. Its types are small, parse at the edge
//! (`Email::parse`, `Quantity::new`, `Limit::new`) and are never raw strings deeper in.
//! They derive serde because they appear inside every module's wire format.

mod context;
mod contract_error;
mod error;
mod event;
mod idempotency;
mod ids;
mod money;
mod paging;
mod quantity;
pub mod schema;
mod text;
mod trace;

pub use context::{AccessDenied, Delegation, Principal, RequestContext, RequestId, Role};
pub use error::{ContractError, ErrorKind, TransportError};
pub use event::{DecodeError, Envelope, Event, TraceContext};
pub use idempotency::IdempotencyKey;
pub use ids::{
    EventId, NotificationCursor, NotificationId, OrderCursor, OrderId, PaymentCursor, PaymentId,
    ProductCursor, ProductId, UserId, parse_uuid,
};
pub use money::{Currency, Money, MoneyError};
#[cfg(any(test, feature = "testing"))]
pub use paging::check_cursor_key;
pub use paging::{Cursor, CursorKey, Limit, Page, cursor_schema, page_params};
pub use quantity::Quantity;
pub use text::{Email, TextError, bounded_text, display_name, nfc};
pub use trace::TraceParent;

/// Milliseconds since the Unix epoch; the one timestamp representation stored in databases,
/// because it sorts and compares the same way on SQLite and PostgreSQL.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats epoch milliseconds as RFC 3339 for the wire.
pub fn ms_to_rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
