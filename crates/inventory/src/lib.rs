//! The inventory module: owns stock levels and reservations and implements
//! [`inventory_api::InventoryService`] over its own database. It asks catalog (through
//! `CatalogClient`) whether a product exists; it never reads catalog's tables. In the
//! checkout saga it reserves, sells and releases stock on orders' events (`saga`).

mod handlers;
mod service;

pub use handlers::{CONSUMER, SUBSCRIBES};
pub use service::Inventory;
