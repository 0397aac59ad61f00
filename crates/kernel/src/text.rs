use precis_profiles::precis_core::profile::Profile as _;
use precis_profiles::{Nickname, UsernameCaseMapped};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} must be between {min} and {max} characters")]
    Length { field: &'static str, min: usize, max: usize },
    #[error("{field} must not contain control characters")]
    Control { field: &'static str },
    #[error("email address is not valid")]
    Email,
    /// Characters a person would not see or would misread: invisible ones, direction
    /// controls, and the rest a PRECIS profile (RFC 8264) disallows.
    #[error(
        "{field} must not contain invisible, direction-changing or other disallowed characters"
    )]
    Characters { field: &'static str },
    /// A secret an attacker would try early (NIST SP 800-63B, section 3.1.1.2: a blocklist
    /// of common, expected or compromised values).
    #[error("{field} is too easy to guess: {why}")]
    Guessable { field: &'static str, why: &'static str },
}

/// A name a person reads (a display name), prepared as RFC 8266's Nickname profile says:
/// non-ASCII spaces become spaces, runs of spaces one, compatibility forms their plain
/// form (NFKC), and invisible or direction-changing characters are refused; then checked
/// as [`bounded_text`]. Two names that look the same compare equal.
pub fn display_name(
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<String, TextError> {
    // Bounded before the profile does any work on it.
    if s.len() > 4 * max + 64 {
        return Err(TextError::Length { field, min, max });
    }
    let prepared = Nickname::new().enforce(s).map_err(|_| {
        // An empty name is a length error, not a character error.
        if s.trim().is_empty() {
            TextError::Length { field, min, max }
        } else {
            TextError::Characters { field }
        }
    })?;
    bounded_text(field, &prepared, min, max)
}

/// Trims `s`, checks its length in characters (at most `max` as sent, as JSON Schema's
/// `maxLength` counts them; at least `min` trimmed) and that it has no control characters, and returns it in Unicode
/// Normalization Form C (UAX #15). NFC makes text that a person reads as the same
/// (`caf\u{e9}` and `cafe\u{301}`) the same string wherever it is stored, searched or
/// compared. [`crate::schema::text_pattern`] is this rule for the published schema.
pub fn bounded_text(
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<String, TextError> {
    let t = s.trim();
    // At most `max` as sent and at least `min` once trimmed: exactly what the schema's
    // `maxLength` and `pattern` say (see `kernel::schema::text_pattern`).
    if t.chars().count() < min || s.chars().count() > max {
        return Err(TextError::Length { field, min, max });
    }
    // Anywhere in the text as sent, trimmed ends included (U+0085 is both white space
    // and a control character).
    if s.chars().any(char::is_control) {
        return Err(TextError::Control { field });
    }
    Ok(t.nfc().collect())
}

/// `s` in Unicode Normalization Form C (UAX #15): the one form text is kept and compared
/// in.
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// An email address, trimmed and prepared as RFC 8265's UsernameCaseMapped profile says
/// (section 3.3): full-width forms made plain, lower case, NFC, and only letters, digits
/// and printable ASCII, so that two addresses a person reads as the same are the same
/// (`jos\u{e9}@…` and `jose\u{301}@…`) and none hides an invisible character
/// (`admin\u{200b}@…`). Otherwise deliberately permissive (one `@`, a dotted domain): the
/// only real check of an address is a mail that arrives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = Email)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email, TextError> {
        let t = s.trim();
        // Bounded before the profile does any work on it.
        if t.is_empty() || t.len() > 4 * 254 {
            return Err(TextError::Email);
        }
        let t = UsernameCaseMapped::new()
            .enforce(t)
            .map_err(|_| TextError::Characters { field: "email" })?
            .into_owned();
        if t.len() > 254 {
            return Err(TextError::Email);
        }
        let (local, domain) = t.split_once('@').ok_or(TextError::Email)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !t.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(Email(t)) } else { Err(TextError::Email) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalises_and_rejects() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in
            ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a@b@c.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(10_000))).is_err());
    }

    /// Addresses a person reads as the same are the same; ones hiding characters a person
    /// cannot see are refused (issue 19's cases).
    #[test]
    fn emails_compare_as_a_person_reads_them() {
        let composed = Email::parse("jos\u{e9}@shop.example").unwrap();
        assert_eq!(Email::parse("jose\u{301}@shop.example").unwrap(), composed);
        assert_eq!(Email::parse("JOS\u{c9}@shop.example").unwrap(), composed);
        // Full-width letters are their plain form.
        assert_eq!(Email::parse("\u{ff41}da@shop.example").unwrap().as_str(), "ada@shop.example");
        for hidden in [
            "admin\u{200b}@shop.example",
            "ad\u{200d}min@shop.example",
            "admin\u{2060}@shop.example",
            "\u{feff}admin@shop.example",
            "admin\u{202e}@shop.example",
            "admin\u{2066}x\u{2069}@shop.example",
            "admin\u{ad}@shop.example",
        ] {
            assert_eq!(
                Email::parse(hidden),
                Err(TextError::Characters { field: "email" }),
                "{hidden:?}"
            );
        }
    }

    #[test]
    fn display_names_compare_as_a_person_reads_them() {
        assert_eq!(
            display_name("name", "  Ada\u{a0}\u{a0}Lovelace ", 1, 50).unwrap(),
            "Ada Lovelace"
        );
        assert_eq!(
            display_name("name", "Jose\u{301}", 1, 50).unwrap(),
            display_name("name", "Jos\u{e9}", 1, 50).unwrap()
        );
        for hidden in ["Ad\u{200b}a", "Ada\u{202e}", "\u{2066}Ada\u{2069}"] {
            assert_eq!(
                display_name("name", hidden, 1, 50),
                Err(TextError::Characters { field: "name" }),
                "{hidden:?}"
            );
        }
        assert!(matches!(display_name("name", "   ", 1, 50), Err(TextError::Length { .. })));
        assert!(matches!(
            display_name("name", &"a".repeat(51), 1, 50),
            Err(TextError::Length { .. })
        ));
    }

    #[test]
    fn bounded_text_counts_chars_and_rejects_controls() {
        assert_eq!(bounded_text("name", "  Ada  ", 1, 10).unwrap(), "Ada");
        assert!(bounded_text("name", "", 1, 10).is_err());
        assert!(bounded_text("name", &"é".repeat(11), 1, 10).is_err());
        assert!(bounded_text("name", &"é".repeat(10), 1, 10).is_ok());
        assert!(bounded_text("name", "a\u{0}b", 1, 10).is_err());
        // One normal form, counted after normalizing.
        assert_eq!(bounded_text("name", "Cafe\u{301}", 1, 5).unwrap(), "Caf\u{e9}");
    }
}
