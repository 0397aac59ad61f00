//! The notifications module's contract: [`NotificationsService`] (the caller's
//! notifications, newest first), the wire types and error, the [`NotificationsClient`]
//! handle and the public HTTP adapter ([`http::router`]). Notifications are written by the
//! module itself when it hears about orders; nothing else creates them. Admins also see
//! the messages written for every admin (the daily sales summary).

mod client;
mod error;
pub mod http;
pub mod remote;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod types;

#[cfg(feature = "mock")]
pub use client::MockNotificationsService;
pub use client::{NotificationsClient, NotificationsService};
pub use error::NotificationsError;
pub use remote::NotificationsRemote;
pub use types::{Notification, NotificationKind, NotificationPage, NotificationParams};
