use serde::{Deserialize, Serialize};

/// A count of units of one product in a cart line, a reservation or an order: at least 1,
/// at most [`Quantity::MAX`]. Modules may cap lower (a cart line takes at most 99).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 1_000_000;

    pub fn new(n: i64) -> Option<Quantity> {
        (1..=i64::from(Self::MAX)).contains(&n).then_some(Quantity(n as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = String;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Quantity::new(n).ok_or_else(|| format!("quantity must be between 1 and {}", Self::MAX))
    }
}

impl From<Quantity> for i64 {
    fn from(q: Quantity) -> i64 {
        i64::from(q.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_none());
        assert!(Quantity::new(-1).is_none());
        assert_eq!(Quantity::new(1).map(Quantity::get), Some(1));
        assert!(Quantity::new(i64::from(Quantity::MAX) + 1).is_none());
        assert!(serde_json::from_str::<Quantity>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1e99").is_err());
    }
}
