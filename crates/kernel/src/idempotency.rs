/// A client's `Idempotency-Key`: the same key (from the same user) means the same request,
/// so a retry after a lost answer never does the work twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl TryFrom<String> for IdempotencyKey {
    type Error = &'static str;
    fn try_from(s: String) -> Result<IdempotencyKey, Self::Error> {
        IdempotencyKey::parse(&s).ok_or("an idempotency key is 1 to 255 printable ASCII characters")
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// Accepts 1 to 255 printable ASCII characters (a UUID is the usual choice), so a key is
    /// safe to store, log and compare byte for byte.
    pub fn parse(s: &str) -> Option<IdempotencyKey> {
        let ok =
            !s.is_empty() && s.len() <= Self::MAX_LEN && s.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| IdempotencyKey(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_printable_ascii() {
        assert!(IdempotencyKey::parse("0190f3c2-aaaa-7bbb-8ccc-1234567890ab").is_some());
        assert!(IdempotencyKey::parse("").is_none());
        assert!(IdempotencyKey::parse("with space").is_none());
        assert!(IdempotencyKey::parse("ünïcode").is_none());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_some());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_none());
    }
}
