//! The cart module: owns one cart per user (product ids and quantities only) and implements
//! [`cart_api::CartService`]. Names and prices come from catalog, through `CatalogClient`,
//! each time a cart is read.

mod handlers;
mod service;

pub use handlers::{CONSUMER, SUBSCRIBES};
pub use service::{Cart, MAX_LINES};
