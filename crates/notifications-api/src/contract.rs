//! The notifications contract, declared once: the [`NotificationsService`] trait, the [`NotificationsClient`] handle,
//! the remote client [`NotificationsRemote`] and the [`internal_routes`] that serve it.

use kernel::{Limit, NotificationId, Page, RequestContext};

use crate::{Notification, NotificationsError};

rpc::contract! {
    module: "notifications",
    client: NotificationsClient,
    remote: NotificationsRemote,
    /// What the notifications module does, whatever its placement.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait NotificationsService {
        /// The caller's notifications, newest first.
        #[idempotent]
        async fn list(
            &self,
            ctx: &RequestContext,
            limit: Limit,
            after: Option<NotificationId>,
        ) -> Result<Page<Notification, NotificationId>, NotificationsError>;
    }
}
