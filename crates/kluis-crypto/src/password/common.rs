//! The list of commonly used passwords, compiled into the binary.
//!
//! Sources and licences are recorded in `data/README.md`.

use std::collections::HashSet;
use std::sync::LazyLock;

/// zxcvbn's 30,000 most common passwords (MIT licence, see `data/LICENSE-zxcvbn.txt`).
const ZXCVBN_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");
/// Curated supplement: common passwords that satisfy all four character classes.
const EXTRA_PASSWORDS: &str = include_str!("../../data/common-passwords-extra.txt");

/// Lower-cased set of all listed passwords, built on first use.
static COMMON: LazyLock<HashSet<String>> = LazyLock::new(|| {
    ZXCVBN_PASSWORDS
        .lines()
        .chain(EXTRA_PASSWORDS.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_lowercase)
        .collect()
});

/// Whether `p` is on the common-password list (compared case-insensitively).
pub fn is_common_password(p: &str) -> bool {
    COMMON.contains(&p.to_lowercase())
}

/// Number of distinct (case-insensitive) entries on the common-password list.
pub fn common_password_count() -> usize {
    COMMON.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn list_has_at_least_ten_thousand_entries() {
        assert!(
            common_password_count() >= 10_000,
            "{}",
            common_password_count()
        );
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert!(is_common_password("password"));
        assert!(is_common_password("PassWord"));
        assert!(is_common_password("P@SSW0RD"));
        assert!(!is_common_password("correct horse battery staple 93!"));
        assert!(!is_common_password(""));
    }

    #[test]
    fn class_satisfying_common_passwords_are_listed() {
        for p in [
            "Password1!",
            "P@ssw0rd",
            "Welcome1!",
            "Qwerty123!",
            "Summer2024!",
        ] {
            assert!(is_common_password(p), "{p}");
        }
    }
}
