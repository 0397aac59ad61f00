//! The cart contract over HTTP/JSON: [`CartRemote`] (the client side) and
//! [`internal_routes`] (the server side), derived from one list of the methods.

use kernel::{ProductId, UserId};

use crate::{Cart, CartClient, CartError, CartQuantity, CartService};

rpc::remote_contract! {
    module: "cart",
    service: CartService,
    client: CartClient,
    error: CartError,
    remote: CartRemote,
    methods: {
        #[idempotent]
        fn get(user: UserId) -> Cart;
        fn set_item(user: UserId, product: ProductId, quantity: CartQuantity) -> Cart;
        fn remove_item(user: UserId, product: ProductId) -> Cart;
        fn clear(user: UserId) -> ();
    }
}
