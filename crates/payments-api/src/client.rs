use std::sync::Arc;

use async_trait::async_trait;
use kernel::{OrderId, RequestContext};
use tracing::Instrument as _;

use crate::{Payment, PaymentsError};

/// What the payments module does, whatever its placement.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PaymentsService: Send + Sync + 'static {
    /// The caller's payments, newest first; with `order`, that order's only, and
    /// `PaymentNotFound` if the caller has none for it (someone else's order included).
    async fn list(
        &self,
        ctx: &RequestContext,
        order: Option<OrderId>,
    ) -> Result<Vec<Payment>, PaymentsError>;
}

/// The handle through which everything else talks to payments.
#[derive(Clone)]
pub struct PaymentsClient(Arc<dyn PaymentsService>);

impl std::fmt::Debug for PaymentsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentsClient")
    }
}

impl PaymentsClient {
    /// An in-process implementation (the monolith's placement).
    pub fn local(service: impl PaymentsService) -> Self {
        PaymentsClient(Arc::new(service))
    }

    /// Any implementation, e.g. a remote transport.
    pub fn from_arc(service: Arc<dyn PaymentsService>) -> Self {
        PaymentsClient(service)
    }

    /// The implementation behind the handle, for a wrapper that opens no span of its own
    /// (the handle's methods each open one).
    pub fn into_service(self) -> Arc<dyn PaymentsService> {
        self.0
    }

    /// A mockall mock, for tests that script the answers.
    #[cfg(feature = "mock")]
    pub fn mock(mock: MockPaymentsService) -> Self {
        PaymentsClient(Arc::new(mock))
    }

    pub async fn list(
        &self,
        ctx: &RequestContext,
        order: Option<OrderId>,
    ) -> Result<Vec<Payment>, PaymentsError> {
        self.0.list(ctx, order).instrument(tracing::info_span!("payments.list")).await
    }
}
