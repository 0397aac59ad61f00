//! Events inventory publishes (see the event catalogue in ARCHITECTURE.md).

use kernel::Event;
use kernel::{OrderId, ProductId};
use serde::{Deserialize, Serialize};

use crate::ReservationLine;

/// `inventory.stock_reserved`, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: OrderId,
    pub lines: Vec<ReservationLine>,
}

/// `inventory.stock_rejected`, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRejected {
    pub order_id: OrderId,
    pub product_id: ProductId,
}

/// `inventory.reservation_released`, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservationReleased {
    pub order_id: OrderId,
}

impl Event for StockReserved {
    const TYPE: &'static str = "inventory.stock_reserved";
}
impl Event for StockRejected {
    const TYPE: &'static str = "inventory.stock_rejected";
}
impl Event for ReservationReleased {
    const TYPE: &'static str = "inventory.reservation_released";
}
