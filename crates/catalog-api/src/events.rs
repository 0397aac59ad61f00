//! Events catalog publishes (see the event catalogue in ARCHITECTURE.md).

use kernel::Event;
use kernel::{Money, ProductId};
use serde::{Deserialize, Serialize};

/// `catalog.product_changed`, version 1: a product was created or updated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductChanged {
    pub product_id: ProductId,
    pub name: String,
    pub category: String,
    pub price: Money,
}

impl Event for ProductChanged {
    const TYPE: &'static str = "catalog.product_changed";
}
