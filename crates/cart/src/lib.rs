//! The cart module: owns one cart per user (product ids and quantities only) and implements
//! [`cart_api::CartService`]. Names and prices come from catalog, through `CatalogClient`,
//! each time a cart is read.

mod service;

pub use service::{CONSUMER, Cart, MAX_LINES, SUBSCRIBES};
