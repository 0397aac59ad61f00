use kernel::{Money, ProductId};
use serde::{Deserialize, Serialize};

/// A cart, priced with catalog's current prices at the moment it is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub total: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CartLine {
    pub product_id: ProductId,
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub line_total: Money,
}

/// `PUT /api/v1/cart/items/{product_id}` body. Prices are never taken from the client.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityRequest {
    /// Parsed as a [`CartQuantity`], whose bounds the schema shows.
    #[schema(value_type = CartQuantity)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub quantity: i64,
}

/// The quantity of one cart line: 1 to [`CartQuantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct CartQuantity(u32);

impl TryFrom<i64> for CartQuantity {
    type Error = String;
    fn try_from(n: i64) -> Result<CartQuantity, String> {
        CartQuantity::new(n).ok_or_else(|| format!("a quantity is 1 to {}", CartQuantity::MAX))
    }
}

impl From<CartQuantity> for i64 {
    fn from(q: CartQuantity) -> i64 {
        i64::from(q.0)
    }
}

// The schema is made from the same bounds as the parsing: one source.
impl utoipa::PartialSchema for CartQuantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let max = u64::from(Self::MAX);
        kernel::schema::bounded_integer(1, max, None, "How many of the product: 1 to 99.")
    }
}

impl utoipa::ToSchema for CartQuantity {}

impl CartQuantity {
    pub const MAX: u32 = 99;

    pub fn new(n: i64) -> Option<CartQuantity> {
        (1..=i64::from(Self::MAX)).contains(&n).then_some(CartQuantity(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}
