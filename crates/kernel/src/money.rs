use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code: three ASCII uppercase letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "USD", pattern = "^[A-Z]{3}$")]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(s: &str) -> Result<Self, MoneyError> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(MoneyError::BadCurrency)
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII uppercase bytes are ever stored, see `parse`.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.as_str().to_owned()
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be a three-letter ISO 4217 code such as USD")]
    BadCurrency,
    #[error("amounts in different currencies cannot be added")]
    CurrencyMismatch,
    #[error("amount out of range")]
    Overflow,
}

/// An amount of money in minor units (cents for USD). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Amount in minor units, e.g. 1999 for $19.99.
    #[serde(deserialize_with = "crate::schema::whole_number")]
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money { amount: 0, currency }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch);
        }
        let amount = self.amount.checked_add(other.amount).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, currency: self.currency })
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, currency: self.currency })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parses_only_iso_shapes() {
        assert_eq!(Currency::parse("USD"), Ok(Currency::USD));
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Currency::parse("USDX").is_err());
        assert!(Currency::parse("U$D").is_err());
    }

    #[test]
    fn money_arithmetic_is_checked() {
        let a = Money::new(1999, Currency::USD);
        assert_eq!(a.checked_mul(3), Ok(Money::new(5997, Currency::USD)));
        assert_eq!(a.checked_add(a), Ok(Money::new(3998, Currency::USD)));
        let eur = Money::new(1, Currency::parse("EUR").unwrap());
        assert_eq!(a.checked_add(eur), Err(MoneyError::CurrencyMismatch));
        assert_eq!(Money::new(i64::MAX, Currency::USD).checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn money_wire_format() {
        let json = serde_json::to_string(&Money::new(1999, Currency::USD)).unwrap();
        assert_eq!(json, r#"{"amount":1999,"currency":"USD"}"#);
        assert!(serde_json::from_str::<Money>(r#"{"amount":1,"currency":"usd"}"#).is_err());
    }
}
