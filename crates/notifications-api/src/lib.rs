//! The notifications module's contract: [`NotificationsService`] (the caller's
//! notifications, newest first), the wire types and error, the [`NotificationsClient`]
//! handle and the public HTTP adapter ([`http::router`]). Notifications are written by the
//! module itself when it hears about orders; nothing else creates them. Admins also see
//! the messages written for every admin (the daily sales summary).

mod contract;
mod error;
pub mod http;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use contract::MockNotificationsService;
pub use contract::{
    NotificationsClient, NotificationsRemote, NotificationsService, internal_routes,
};
pub use error::NotificationsError;
pub use types::{Notification, NotificationKind, NotificationPage, NotificationParams};
