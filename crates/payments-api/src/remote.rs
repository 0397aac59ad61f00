//! The payments contract over HTTP/JSON: [`PaymentsRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::OrderId;

use crate::{Payment, PaymentsClient, PaymentsError, PaymentsService};

rpc::remote_contract! {
    module: "payments",
    service: PaymentsService,
    client: PaymentsClient,
    error: PaymentsError,
    remote: PaymentsRemote,
    methods: {
        #[idempotent]
        fn list(order: Option<OrderId>) -> Vec<Payment>;
    }
}
