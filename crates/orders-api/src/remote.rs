//! The orders contract over HTTP/JSON: [`OrdersRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{Cursor, IdempotencyKey, Limit, OrderId, Page};
use payments_api::PaymentToken;

use crate::{Order, OrdersClient, OrdersError, OrdersService, Placed};

rpc::remote_contract! {
    module: "orders",
    service: OrdersService,
    client: OrdersClient,
    error: OrdersError,
    remote: OrdersRemote,
    methods: {
        #[idempotent]
        fn place(key: IdempotencyKey, payment_token: PaymentToken) -> Placed;
        #[idempotent]
        fn list(limit: Limit, after: Option<Cursor>) -> Page<Order>;
        #[idempotent]
        fn get(id: OrderId) -> Order;
    }
}
