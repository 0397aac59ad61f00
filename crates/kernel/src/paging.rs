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
/// and its text form is canonical and described exactly by [`CursorKey::PATTERN`], so
/// the published schema admits exactly the cursors the server accepts.
pub trait CursorKey: Sized {
    /// The listing this key pages (`"products"`): lowercase letters and `-`.
    const LIST: &'static str;
    /// A regular expression (ECMA-262 and Rust `regex` alike, no anchors) that matches
    /// exactly the texts [`CursorKey::from_text`] accepts.
    const PATTERN: &'static str;
    /// The canonical text of this key.
    fn to_text(&self) -> String;
    /// The key written as [`CursorKey::to_text`] writes it; `None` for anything else.
    fn from_text(s: &str) -> Option<Self>;
}

/// The `cursor` of every listing: `LIST.key` (`orders.0192…`). Clients only echo it back
/// (its form may change between versions). It is decoded strictly: a cursor is accepted
/// only if it names this listing and a key of its type written canonically, so tampered
/// or foreign text is a 400, never a wrong page.
pub struct Cursor;

impl Cursor {
    /// Longest cursor text accepted, in bytes.
    pub const MAX_LEN: usize = 256;
    /// What a client is told when its `cursor` is not one this listing gave out.
    pub const RULE: &'static str = "cursor is not valid: pass back a next_cursor of this list";

    pub fn encode<K: CursorKey>(key: &K) -> String {
        format!("{}.{}", K::LIST, key.to_text())
    }

    /// The key inside `s`, if `s` is exactly a cursor [`Cursor::encode`] made for `K`.
    pub fn decode<K: CursorKey>(s: &str) -> Option<K> {
        if s.len() > Self::MAX_LEN {
            return None;
        }
        let key = s.strip_prefix(K::LIST)?.strip_prefix('.')?;
        let key = K::from_text(key)?;
        // Canonical only: the same position never has two spellings.
        (Cursor::encode(&key) == s).then_some(key)
    }

    /// The regular expression of `K`'s cursors (anchored; the empty text is no cursor).
    pub fn pattern<K: CursorKey>() -> String {
        format!("^({}\\.{})?$", K::LIST, K::PATTERN)
    }
}

/// The published schema of the `cursor` parameter of the listing keyed by `K`: exactly
/// the cursors [`Cursor::decode`] accepts, by [`Cursor::pattern`].
pub fn cursor_schema<K: CursorKey>() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let pattern = Cursor::pattern::<K>();
    let about = "`next_cursor` of the previous page of this list; any other text is a 400.";
    crate::schema::bounded_string(0, Cursor::MAX_LEN, Some(&pattern), None, about)
}

/// Declares `$name`, the schema of the `cursor` parameter of the listing keyed by `$key`
/// (see [`cursor_schema`]), for `#[param(value_type = Option<$name>, inline)]`.
#[macro_export]
macro_rules! cursor_param {
    ($(#[$doc:meta])* $vis:vis $name:ident for $key:ty) => {
        $(#[$doc])*
        $vis struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::cursor_schema::<$key>()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// Checks that `K::PATTERN` is exactly `K`'s rule: every key in `samples` round-trips
/// and matches, and every text in `refused` is refused by both. For each key type's
/// tests (feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub fn check_cursor_key<K: CursorKey + PartialEq + std::fmt::Debug>(
    samples: &[K],
    refused: &[&str],
) {
    let re = regex_lite::Regex::new(&Cursor::pattern::<K>()).expect("the pattern compiles");
    for key in samples {
        let c = Cursor::encode(key);
        assert!(re.is_match(&c), "{c} does not match {}", Cursor::pattern::<K>());
        assert_eq!(Cursor::decode::<K>(&c).as_ref(), Some(key), "{c}");
    }
    for text in refused {
        let c = format!("{}.{text}", K::LIST);
        assert!(!re.is_match(&c), "{c} matches");
        assert!(Cursor::decode::<K>(&c).is_none(), "{c} decodes");
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
        // Another list's cursor, any base64, a non-canonical key, junk.
        assert_eq!(Cursor::decode::<OrderId>(&c), None);
        let upper = format!("products.{}", id.to_string().to_uppercase());
        let simple = format!("products.{}", id.as_uuid().simple());
        for bad in [
            "aGVsbG8".to_owned(),
            id.to_string(),
            "products.".to_owned(),
            "products.not-an-id".to_owned(),
            upper,
            simple,
            format!("{c} "),
            format!("{c}0"),
            "A".repeat(1000),
        ] {
            assert_eq!(Cursor::decode::<ProductId>(&bad), None, "{bad:?}");
        }
        check_cursor_key(
            &[id, ProductId::from_uuid(uuid::Uuid::nil()), ProductId::from_uuid(uuid::Uuid::max())],
            &[
                "",
                "0",
                "{00000000-0000-0000-0000-000000000000}",
                "00000000000000000000000000000000",
            ],
        );
    }

    #[test]
    fn page_params_refuse_a_foreign_cursor_with_the_rule() {
        let order = Cursor::encode(&OrderId::new());
        assert_eq!(page_params::<ProductId>(None, Some(&order)).err(), Some(Cursor::RULE));
        assert_eq!(page_params::<ProductId>(None, Some("")).unwrap().1, None);
    }
}
