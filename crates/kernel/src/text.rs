use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} must be between {min} and {max} characters")]
    Length { field: &'static str, min: usize, max: usize },
    #[error("{field} must not contain control characters")]
    Control { field: &'static str },
    #[error("email address is not valid")]
    Email,
}

/// Trims `s` and checks its length in characters and that it has no control characters.
pub fn bounded_text(
    field: &'static str,
    s: &str,
    min: usize,
    max: usize,
) -> Result<String, TextError> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(TextError::Length { field, min, max });
    }
    if t.chars().any(char::is_control) {
        return Err(TextError::Control { field });
    }
    Ok(t.to_owned())
}

/// An email address, trimmed and lowercased. Deliberately permissive (one `@`, a dotted
/// domain, no spaces): the only real check of an address is a mail that arrives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, format = Email)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email, TextError> {
        let t = s.trim().to_lowercase();
        if t.is_empty() || t.len() > 254 {
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

    #[test]
    fn bounded_text_counts_chars_and_rejects_controls() {
        assert_eq!(bounded_text("name", "  Ada  ", 1, 10).unwrap(), "Ada");
        assert!(bounded_text("name", "", 1, 10).is_err());
        assert!(bounded_text("name", &"é".repeat(11), 1, 10).is_err());
        assert!(bounded_text("name", &"é".repeat(10), 1, 10).is_ok());
        assert!(bounded_text("name", "a\u{0}b", 1, 10).is_err());
    }
}
