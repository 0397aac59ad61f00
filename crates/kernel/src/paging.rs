use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// A page size, capped so no request can ask for an unbounded scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Limit(u32);

impl TryFrom<u32> for Limit {
    type Error = &'static str;
    fn try_from(n: u32) -> Result<Limit, Self::Error> {
        Limit::new(Some(n)).ok_or("limit must be at least 1")
    }
}

impl From<Limit> for u32 {
    fn from(l: Limit) -> u32 {
        l.0
    }
}

impl Limit {
    pub const DEFAULT: u32 = 20;
    pub const MAX: u32 = 100;

    /// What a client is told when its `limit` breaks the rule, on every list.
    pub const RULE: &'static str = "limit must be a whole number from 1 to 100";

    /// `None` gives the default; 1 to [`Limit::MAX`] is taken as is; anything else is
    /// refused, never silently changed (the one paging rule of every list).
    pub fn new(requested: Option<u32>) -> Option<Limit> {
        match requested {
            None => Some(Limit(Self::DEFAULT)),
            Some(n @ 1..=Self::MAX) => Some(Limit(n)),
            Some(_) => None,
        }
    }

    /// A `limit` query parameter as sent (`None`: absent): decimal digits only, 1 to
    /// [`Limit::MAX`]; `-1`, `0`, `1.5` and `2147483648` are all the same error.
    pub fn parse(requested: Option<&str>) -> Result<Limit, &'static str> {
        match requested {
            None => Ok(Limit(Self::DEFAULT)),
            // Digits only (no sign, no space), and few enough for a u64.
            Some(s) if (1..=19).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => {
                let n = s.parse::<u64>().ok().and_then(|n| u32::try_from(n).ok());
                n.and_then(|n| Limit::new(Some(n))).ok_or(Self::RULE)
            }
            Some(_) => Err(Self::RULE),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

// The schema is made from the same bounds as the parsing: one source.
impl utoipa::PartialSchema for Limit {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let (max, default) = (u64::from(Self::MAX), Some(u64::from(Self::DEFAULT)));
        crate::schema::bounded_integer(1, max, default, "Page size: 1 to 100; default 20.")
    }
}

impl utoipa::ToSchema for Limit {}

impl Default for Limit {
    fn default() -> Self {
        Limit(Self::DEFAULT)
    }
}

/// An opaque position in a listing. Clients only echo it back; the module that made it
/// decides what is inside (for the catalog: the last id seen).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cursor(String);

impl TryFrom<String> for Cursor {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Cursor, Self::Error> {
        Cursor::parse(&s).ok_or("cursor is not valid")
    }
}

impl From<Cursor> for String {
    fn from(c: Cursor) -> String {
        c.0
    }
}

impl Cursor {
    const MAX_LEN: usize = 256;

    pub fn encode(position: &str) -> Cursor {
        Cursor(URL_SAFE_NO_PAD.encode(position.as_bytes()))
    }

    /// Parses a cursor a client sent back; `None` if it is not one of ours.
    pub fn parse(s: &str) -> Option<Cursor> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        String::from_utf8(bytes).ok()?;
        Some(Cursor(s.to_owned()))
    }

    pub fn position(&self) -> String {
        URL_SAFE_NO_PAD
            .decode(&self.0)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses a listing's `limit` and `cursor` query parameters (an empty cursor is none);
/// the error is a sentence for the client.
pub fn page_params(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Limit, Option<Cursor>), &'static str> {
    let limit = Limit::parse(limit)?;
    let cursor = match cursor {
        None | Some("") => None,
        Some(c) => Some(Cursor::parse(c).ok_or("cursor is not valid")?),
    };
    Ok((limit, cursor))
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_1_to_100_and_nothing_else() {
        assert_eq!(Limit::new(None).unwrap().get(), Limit::DEFAULT);
        assert_eq!(Limit::new(Some(5)).unwrap().get(), 5);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        assert_eq!(Limit::parse(None).unwrap().get(), Limit::DEFAULT);
        for bad in ["0", "-1", "101", "2147483648", "1.5", "", " 5", "+5", "0x10", "٥"] {
            assert_eq!(Limit::parse(Some(bad)), Err(Limit::RULE), "{bad:?}");
        }
        assert!(Limit::new(Some(1_000_000)).is_none());
        assert_eq!(Limit::parse(Some("007")).unwrap().get(), 7);
        assert_eq!(Limit::parse(Some(&"9".repeat(40))), Err(Limit::RULE));
        assert!(Limit::RULE.ends_with(&format!("1 to {}", Limit::MAX)), "the rule says the bounds");
    }

    #[test]
    fn cursor_round_trip_and_garbage() {
        let c = Cursor::encode("0192-abc");
        let parsed = Cursor::parse(c.as_str()).unwrap();
        assert_eq!(parsed.position(), "0192-abc");
        assert!(Cursor::parse("!!!").is_none());
        assert!(Cursor::parse(&"A".repeat(1000)).is_none());
    }
}
