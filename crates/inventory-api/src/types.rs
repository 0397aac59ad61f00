use kernel::{OrderId, ProductId, Quantity};
use serde::{Deserialize, Serialize};

/// Stock of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockLevel {
    pub product_id: ProductId,
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for orders that are not finished yet.
    pub reserved: i64,
}

/// `PUT /api/v1/inventory/{product_id}` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStockRequest {
    /// Parsed as a [`StockCount`], whose bounds the schema shows.
    #[schema(value_type = StockCount)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub available: i64,
}

/// A stock count an admin may set: 0 to [`StockCount::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct StockCount(i64);

impl TryFrom<i64> for StockCount {
    type Error = String;
    fn try_from(n: i64) -> Result<StockCount, String> {
        StockCount::new(n).ok_or_else(|| format!("a stock count is 0 to {}", StockCount::MAX))
    }
}

impl From<StockCount> for i64 {
    fn from(c: StockCount) -> i64 {
        c.0
    }
}

// The schema is made from the same bounds as the parsing: one source.
impl utoipa::PartialSchema for StockCount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let about = "Units that can be reserved: 0 to 1000000000.";
        kernel::schema::bounded_integer(0, Self::MAX as u64, None, about)
    }
}

impl utoipa::ToSchema for StockCount {}

impl StockCount {
    pub const MAX: i64 = 1_000_000_000;

    pub fn new(n: i64) -> Option<StockCount> {
        (0..=Self::MAX).contains(&n).then_some(StockCount(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Every line is held.
    Reserved,
    /// Some line could not be held; nothing is held.
    Rejected,
    /// The held units are sold.
    Committed,
    /// The held units are available again.
    Released,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "reserved",
            ReservationStatus::Rejected => "rejected",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<ReservationStatus> {
        Some(match s {
            "reserved" => ReservationStatus::Reserved,
            "rejected" => ReservationStatus::Rejected,
            "committed" => ReservationStatus::Committed,
            "released" => ReservationStatus::Released,
            _ => return None,
        })
    }
}

/// The reservation of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    /// The lines asked for, one per product (duplicates merged).
    pub lines: Vec<ReservationLine>,
    /// When rejected: the first product that was short.
    pub short_product: Option<ProductId>,
}
