//! The inventory contract over HTTP/JSON: [`InventoryRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{OrderId, ProductId};

use crate::{
    InventoryClient, InventoryError, InventoryService, Reservation, ReservationLine, StockCount,
    StockLevel,
};

rpc::remote_contract! {
    module: "inventory",
    service: InventoryService,
    client: InventoryClient,
    error: InventoryError,
    remote: InventoryRemote,
    methods: {
        #[idempotent]
        fn stock(product: ProductId) -> StockLevel;
        fn set_stock(product: ProductId, available: StockCount) -> StockLevel;
        fn reserve(order: OrderId, lines: Vec<ReservationLine>) -> Reservation;
        fn commit(order: OrderId) -> Reservation;
        fn release(order: OrderId) -> Reservation;
    }
}
