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

    /// `None` gives the default; values above [`Limit::MAX`] are capped; zero is refused.
    pub fn new(requested: Option<u32>) -> Option<Limit> {
        match requested {
            None => Some(Limit(Self::DEFAULT)),
            Some(0) => None,
            Some(n) => Some(Limit(n.min(Self::MAX))),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

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
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<(Limit, Option<Cursor>), &'static str> {
    let limit = Limit::new(limit).ok_or("limit must be at least 1")?;
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
    fn limit_is_capped_and_never_zero() {
        assert_eq!(Limit::new(None).unwrap().get(), Limit::DEFAULT);
        assert_eq!(Limit::new(Some(5)).unwrap().get(), 5);
        assert_eq!(Limit::new(Some(1_000_000)).unwrap().get(), Limit::MAX);
        assert!(Limit::new(Some(0)).is_none());
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
