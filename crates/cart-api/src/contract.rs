//! The cart contract, declared once: the [`CartService`] trait, the [`CartClient`] handle,
//! the remote client [`CartRemote`] and the [`internal_routes`] that serve it.

use kernel::{ProductId, RequestContext, UserId};

use crate::{Cart, CartError, CartQuantity};

rpc::contract! {
    module: "cart",
    client: CartClient,
    remote: CartRemote,
    /// What the cart module does, whatever its placement. `user` must be the caller (or the
    /// caller an admin, as checkout's system context is).
    #[cfg_attr(feature = "mock", mockall::automock)]
    pub trait CartService {
        #[idempotent]
        async fn get(&self, ctx: &RequestContext, user: UserId) -> Result<Cart, CartError>;
        async fn set_item(
            &self,
            ctx: &RequestContext,
            user: UserId,
            product: ProductId,
            quantity: CartQuantity,
        ) -> Result<Cart, CartError>;
        async fn remove_item(
            &self,
            ctx: &RequestContext,
            user: UserId,
            product: ProductId,
        ) -> Result<Cart, CartError>;
        async fn clear(&self, ctx: &RequestContext, user: UserId) -> Result<(), CartError>;
    }
}
