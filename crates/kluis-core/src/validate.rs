//! Input validation shared by services. Errors name the field and never echo the value.

use kluis_types::Email;

use crate::{Error, Result};

/// [`Email::parse`] with the field named in the error.
pub fn email(field: &str, raw: &str) -> Result<Email> {
    Email::parse(raw)
        .map_err(|_| Error::validation(field, "invalid_email", "not a valid email address"))
}

/// A human-readable name: 1..=200 characters, no control characters.
pub fn name(field: &str, raw: &str) -> Result<String> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 200 || n.chars().any(char::is_control) {
        return Err(Error::validation(
            field,
            "invalid_name",
            "must be 1 to 200 characters without control characters",
        ));
    }
    Ok(n.to_owned())
}

/// Tenant slug: 3..=63 of [a-z0-9-], not starting or ending with '-'.
pub fn slug(field: &str, raw: &str) -> Result<String> {
    let s = raw.trim();
    let ok = (3..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        return Err(Error::validation(
            field,
            "invalid_slug",
            "must be 3 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
        ));
    }
    Ok(s.to_owned())
}

/// Cursor: the id of the last item of the previous page.
pub fn cursor<T: std::str::FromStr>(raw: Option<&str>) -> Result<Option<T>> {
    raw.map(|c| {
        c.parse::<T>()
            .map_err(|_| Error::validation("cursor", "invalid_cursor", "cursor is not valid"))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email("e", "  Jan@Example.NL ").unwrap().as_str(),
            "jan@example.nl"
        );
        for bad in [
            "", "a", "a@b", "a@@b.nl", "a b@c.nl", "@c.nl", "a@.nl", "a@c.nl.", "a@c..nl",
        ] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slugs() {
        assert!(slug("s", "acme-bv").is_ok());
        for bad in ["ab", "-abc", "abc-", "ABC", "a_b_c", "a b c"] {
            assert!(slug("s", bad).is_err(), "{bad}");
        }
    }
}
