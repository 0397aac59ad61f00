//! Events catalog publishes (delivered by the bus once it exists; see ARCHITECTURE.md).

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

impl ProductChanged {
    pub const TYPE: &'static str = "catalog.product_changed";
    pub const VERSION: u32 = 1;
}
