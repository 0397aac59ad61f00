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

/// A position a listing can resume after: what a cursor carries inside.
///
/// Each kind of key names its listing, so a cursor from one list is refused by another,
/// and the text form must be canonical, so one position has exactly one cursor.
pub trait CursorKey: Sized {
    /// The listing this key pages (`"products"`), written into every cursor.
    const LIST: &'static str;
    /// The canonical text of this key.
    fn to_text(&self) -> String;
    /// The key written as [`CursorKey::to_text`] writes it; `None` for anything else.
    fn from_text(s: &str) -> Option<Self>;
}

/// The opaque `cursor` of every listing: URL-safe base64 (RFC 4648 section 5, no
/// padding) of `LIST:key`. Clients only echo it back. It is decoded strictly: a cursor
/// is accepted only if it decodes to this listing's tag and a key of its type written
/// canonically, so tampered or foreign text is a 400, never a wrong page.
pub struct Cursor;

impl Cursor {
    /// Longest cursor text accepted, in bytes.
    pub const MAX_LEN: usize = 256;
    /// What a client is told when its `cursor` is not one this listing gave out.
    pub const RULE: &'static str = "cursor is not valid: pass back a next_cursor of this list";

    pub fn encode<K: CursorKey>(key: &K) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", K::LIST, key.to_text()))
    }

    /// The key inside `s`, if `s` is exactly a cursor [`Cursor::encode`] made for `K`.
    pub fn decode<K: CursorKey>(s: &str) -> Option<K> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (list, key) = text.split_once(':')?;
        if list != K::LIST {
            return None;
        }
        let key = K::from_text(key)?;
        // Canonical only: the same position never has two spellings.
        (Cursor::encode(&key) == s).then_some(key)
    }
}

/// Parses a listing's `limit` and `cursor` query parameters (an empty cursor is none);
/// the error is a sentence for the client.
pub fn page_params<K: CursorKey>(
    limit: Option<&str>,
    cursor: Option<&str>,
) -> Result<(Limit, Option<K>), &'static str> {
    let limit = Limit::parse(limit)?;
    let after = match cursor {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode::<K>(c).ok_or(Cursor::RULE)?),
    };
    Ok((limit, after))
}

/// One page of a listing keyed by `K`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T, K> {
    pub items: Vec<T>,
    /// The key of the last item when more follow: pass it as `after` for the next page.
    pub next: Option<K>,
}

impl<T, K: CursorKey> Page<T, K> {
    /// The `next_cursor` clients see: always present, `null` on the last page.
    pub fn next_cursor(&self) -> Option<String> {
        self.next.as_ref().map(Cursor::encode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OrderId, ProductId};

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
    fn a_cursor_round_trips_and_nothing_else_decodes() {
        let id = ProductId::new();
        let c = Cursor::encode(&id);
        assert_eq!(Cursor::decode::<ProductId>(&c), Some(id));
        // Another list's cursor, base64 of anything, a non-canonical key, padding, junk.
        assert_eq!(Cursor::decode::<OrderId>(&c), None);
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let upper = format!("{}:{}", ProductId::LIST, id.to_string().to_uppercase());
        for bad in [
            b64("hello"),
            b64(&id.to_string()),
            b64(&format!("{}:", ProductId::LIST)),
            b64(&format!("{}:not-an-id", ProductId::LIST)),
            b64(&upper),
            format!("{c}="),
            format!("{c}A"),
            "!!!".to_owned(),
            "A".repeat(1000),
        ] {
            assert_eq!(Cursor::decode::<ProductId>(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn page_params_refuse_a_foreign_cursor_with_the_rule() {
        let order = Cursor::encode(&OrderId::new());
        assert_eq!(page_params::<ProductId>(None, Some(&order)).err(), Some(Cursor::RULE));
        assert_eq!(page_params::<ProductId>(None, Some("")).unwrap().1, None);
    }
}
