use std::sync::Arc;

use async_trait::async_trait;
use kernel::{Cursor, Limit, Page, RequestContext};
use tracing::Instrument as _;

use crate::{Notification, NotificationsError};

/// What the notifications module does, whatever its placement.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait NotificationsService: Send + Sync + 'static {
    /// The caller's notifications, newest first.
    async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Notification>, NotificationsError>;
}

/// The handle through which everything else talks to notifications.
#[derive(Clone)]
pub struct NotificationsClient(Arc<dyn NotificationsService>);

impl std::fmt::Debug for NotificationsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationsClient")
    }
}

impl NotificationsClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl NotificationsService) -> Self {
        NotificationsClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn NotificationsService>) -> Self {
        NotificationsClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn NotificationsService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockNotificationsService) -> Self {
        NotificationsClient(Arc::new(mock))
    }

    pub async fn list(
        &self,
        ctx: &RequestContext,
        limit: Limit,
        after: Option<Cursor>,
    ) -> Result<Page<Notification>, NotificationsError> {
        self.0.list(ctx, limit, after).instrument(tracing::info_span!("notifications.list")).await
    }
}
