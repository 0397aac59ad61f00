//! The payments contract, declared once: the [`PaymentsService`] trait, the [`PaymentsClient`] handle,
//! the remote client [`PaymentsRemote`] and the [`internal_routes`] that serve it.

use kernel::{Page, PaymentId, RequestContext};

use crate::{Payment, PaymentQuery, PaymentsError};

rpc::contract! {
    module: "payments",
    client: PaymentsClient,
    remote: PaymentsRemote,
    /// What the payments module does, whatever its placement.
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait PaymentsService {
        /// The caller's payments, newest first, a page at a time; with `query.order`, that
        /// order's only, and `PaymentNotFound` if the caller has none for it (someone
        /// else's order included).
        #[idempotent]
        async fn list(
            &self,
            ctx: &RequestContext,
            query: PaymentQuery,
        ) -> Result<Page<Payment, PaymentId>, PaymentsError>;
    }
}
