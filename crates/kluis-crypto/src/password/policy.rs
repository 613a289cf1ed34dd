//! Password composition policy.
//!
//! The platform enforces [`PasswordPolicy::BASELINE`] as a floor; tenants may configure a stricter
//! policy, never a weaker one (see [`PasswordPolicy::at_least`] and
//! [`PasswordPolicy::stricter_of`]).

use serde::{Deserialize, Serialize};

use super::common::is_common_password;

/// Longest password accepted, in characters. Bounds the cost of hashing and of policy checks.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Rules a new password must satisfy.
///
/// Deserialising fills missing fields from [`PasswordPolicy::BASELINE`] and rejects unknown
/// fields, so a typo in a tenant's configuration cannot silently weaken it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Minimum length in characters (Unicode scalar values), not bytes.
    pub min_length: usize,
    /// Require at least one uppercase letter.
    pub require_upper: bool,
    /// Require at least one lowercase letter.
    pub require_lower: bool,
    /// Require at least one digit.
    pub require_digit: bool,
    /// Require at least one character that is neither a letter nor a digit.
    pub require_special: bool,
    /// Reject passwords on the common-password list.
    pub reject_common: bool,
}

impl PasswordPolicy {
    /// The platform floor: at least 8 characters, all four character classes, not a common
    /// password.
    pub const BASELINE: PasswordPolicy = PasswordPolicy {
        min_length: 8,
        require_upper: true,
        require_lower: true,
        require_digit: true,
        require_special: true,
        reject_common: true,
    };

    /// Checks `password` against this policy, reporting the first rule it breaks.
    ///
    /// Order: length (too short, then too long), character classes (upper, lower, digit,
    /// special), then the common-password list.
    pub fn check(&self, password: &str) -> Result<(), PolicyViolation> {
        let chars = password.chars().count();
        if chars < self.min_length {
            return Err(PolicyViolation::TooShort {
                min: self.min_length,
            });
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(PolicyViolation::TooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        if self.require_upper && !password.chars().any(char::is_uppercase) {
            return Err(PolicyViolation::MissingUppercase);
        }
        if self.require_lower && !password.chars().any(char::is_lowercase) {
            return Err(PolicyViolation::MissingLowercase);
        }
        if self.require_digit && !password.chars().any(char::is_numeric) {
            return Err(PolicyViolation::MissingDigit);
        }
        // Anything that is not a letter or digit counts as special, including spaces and
        // non-ASCII punctuation: passphrases with spaces are welcome.
        if self.require_special && !password.chars().any(|c| !c.is_alphanumeric()) {
            return Err(PolicyViolation::MissingSpecial);
        }
        if self.reject_common && is_common_password(password) {
            return Err(PolicyViolation::Common);
        }
        Ok(())
    }

    /// True when `self` is at least as strict as `floor` in every dimension.
    pub fn at_least(&self, floor: &PasswordPolicy) -> bool {
        // `a || !b` reads "if the floor requires it, so do we".
        self.min_length >= floor.min_length
            && (self.require_upper || !floor.require_upper)
            && (self.require_lower || !floor.require_lower)
            && (self.require_digit || !floor.require_digit)
            && (self.require_special || !floor.require_special)
            && (self.reject_common || !floor.reject_common)
    }

    /// The field-wise strictest combination of the two policies.
    pub fn stricter_of(&self, other: &PasswordPolicy) -> PasswordPolicy {
        PasswordPolicy {
            min_length: self.min_length.max(other.min_length),
            require_upper: self.require_upper || other.require_upper,
            require_lower: self.require_lower || other.require_lower,
            require_digit: self.require_digit || other.require_digit,
            require_special: self.require_special || other.require_special,
            reject_common: self.reject_common || other.reject_common,
        }
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::BASELINE
    }
}

/// The rule a password broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Fewer characters than the policy's minimum.
    #[error("password must be at least {min} characters")]
    TooShort {
        /// The minimum length in characters.
        min: usize,
    },
    /// More characters than [`MAX_PASSWORD_CHARS`].
    #[error("password must be at most {max} characters")]
    TooLong {
        /// The maximum length in characters.
        max: usize,
    },
    /// No uppercase letter.
    #[error("password must contain at least one uppercase letter")]
    MissingUppercase,
    /// No lowercase letter.
    #[error("password must contain at least one lowercase letter")]
    MissingLowercase,
    /// No digit.
    #[error("password must contain at least one digit")]
    MissingDigit,
    /// No character other than letters and digits.
    #[error("password must contain at least one special character (not a letter or digit)")]
    MissingSpecial,
    /// On the list of commonly used passwords.
    #[error("password is too common: it appears on a list of frequently used passwords")]
    Common,
}

impl PolicyViolation {
    /// Stable machine-readable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::MissingUppercase => "password_missing_uppercase",
            Self::MissingLowercase => "password_missing_lowercase",
            Self::MissingDigit => "password_missing_digit",
            Self::MissingSpecial => "password_missing_special",
            Self::Common => "password_common",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NONE: PasswordPolicy = PasswordPolicy {
        min_length: 0,
        require_upper: false,
        require_lower: false,
        require_digit: false,
        require_special: false,
        reject_common: false,
    };

    #[test]
    fn baseline_is_default_and_floor() {
        let b = PasswordPolicy::BASELINE;
        assert_eq!(PasswordPolicy::default(), b);
        assert_eq!(b.min_length, 8);
        assert!(b.require_upper && b.require_lower && b.require_digit && b.require_special);
        assert!(b.reject_common);
    }

    #[test]
    fn each_rule_reports_its_violation() {
        let p = PasswordPolicy::BASELINE;
        assert_eq!(
            p.check("Ab1!xyz"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(p.check("abcdef1!x"), Err(PolicyViolation::MissingUppercase));
        assert_eq!(p.check("ABCDEF1!X"), Err(PolicyViolation::MissingLowercase));
        assert_eq!(p.check("Abcdefg!x"), Err(PolicyViolation::MissingDigit));
        assert_eq!(p.check("Abcdefg1x"), Err(PolicyViolation::MissingSpecial));
        assert_eq!(p.check("Password1!"), Err(PolicyViolation::Common));
        assert_eq!(p.check("pASSWORD1!"), Err(PolicyViolation::Common));
        assert_eq!(p.check("Tr0mbone-Lantern"), Ok(()));
    }

    #[test]
    fn common_class_satisfying_passwords_rejected() {
        for pw in ["Password1!", "P@ssw0rd", "Welcome1!", "Qwerty123!"] {
            assert_eq!(
                PasswordPolicy::BASELINE.check(pw),
                Err(PolicyViolation::Common),
                "{pw}"
            );
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = PasswordPolicy {
            min_length: 8,
            ..NONE
        };
        // Seven characters, fourteen bytes.
        assert_eq!(
            p.check("ééééééé"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(p.check("éééééééé"), Ok(()));
    }

    #[test]
    fn overlong_rejected_before_classes() {
        let long = "a".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            PasswordPolicy::BASELINE.check(&long),
            Err(PolicyViolation::TooLong { max: 1024 })
        );
        assert_eq!(NONE.check(&"a".repeat(MAX_PASSWORD_CHARS)), Ok(()));
    }

    #[test]
    fn order_is_length_then_classes_then_common() {
        // "password" is common, short of classes: classes win.
        assert_eq!(
            PasswordPolicy::BASELINE.check("password"),
            Err(PolicyViolation::MissingUppercase)
        );
        // Common passwords are rejected even under a policy without class rules.
        let only_common = PasswordPolicy {
            reject_common: true,
            ..NONE
        };
        assert_eq!(only_common.check("letmein"), Err(PolicyViolation::Common));
        assert_eq!(NONE.check("letmein"), Ok(()));
    }

    #[test]
    fn non_ascii_classes() {
        let p = PasswordPolicy {
            reject_common: false,
            ..PasswordPolicy::BASELINE
        };
        assert_eq!(p.check("Ünïcode 7 wörds"), Ok(()));
        assert_eq!(
            p.check("ÜNÏCODE7WÖRDS!"),
            Err(PolicyViolation::MissingLowercase)
        );
    }

    #[test]
    fn codes_and_messages() {
        let cases = [
            (PolicyViolation::TooShort { min: 12 }, "password_too_short"),
            (PolicyViolation::TooLong { max: 1024 }, "password_too_long"),
            (
                PolicyViolation::MissingUppercase,
                "password_missing_uppercase",
            ),
            (
                PolicyViolation::MissingLowercase,
                "password_missing_lowercase",
            ),
            (PolicyViolation::MissingDigit, "password_missing_digit"),
            (PolicyViolation::MissingSpecial, "password_missing_special"),
            (PolicyViolation::Common, "password_common"),
        ];
        for (v, code) in cases {
            assert_eq!(v.code(), code);
            assert!(v.to_string().starts_with("password "), "{v}");
        }
        assert_eq!(
            PolicyViolation::TooShort { min: 8 }.to_string(),
            "password must be at least 8 characters"
        );
    }

    #[test]
    fn at_least_semantics() {
        let b = PasswordPolicy::BASELINE;
        assert!(b.at_least(&b));
        assert!(
            PasswordPolicy {
                min_length: 12,
                ..b
            }
            .at_least(&b)
        );
        assert!(!PasswordPolicy { min_length: 7, ..b }.at_least(&b));
        assert!(
            !PasswordPolicy {
                require_upper: false,
                ..b
            }
            .at_least(&b)
        );
        assert!(
            !PasswordPolicy {
                require_lower: false,
                ..b
            }
            .at_least(&b)
        );
        assert!(
            !PasswordPolicy {
                require_digit: false,
                ..b
            }
            .at_least(&b)
        );
        assert!(
            !PasswordPolicy {
                require_special: false,
                ..b
            }
            .at_least(&b)
        );
        assert!(
            !PasswordPolicy {
                reject_common: false,
                ..b
            }
            .at_least(&b)
        );
        assert!(b.at_least(&NONE));
        assert!(!NONE.at_least(&b));
    }

    #[test]
    fn stricter_of_is_fieldwise_max() {
        let a = PasswordPolicy {
            min_length: 12,
            require_digit: true,
            ..NONE
        };
        let b = PasswordPolicy {
            min_length: 8,
            require_special: true,
            reject_common: true,
            ..NONE
        };
        let s = a.stricter_of(&b);
        assert_eq!(
            s,
            PasswordPolicy {
                min_length: 12,
                require_digit: true,
                require_special: true,
                reject_common: true,
                ..NONE
            }
        );
        assert_eq!(s, b.stricter_of(&a));
        assert!(s.at_least(&a) && s.at_least(&b));
        assert_eq!(
            NONE.stricter_of(&PasswordPolicy::BASELINE),
            PasswordPolicy::BASELINE
        );
    }

    #[test]
    fn serde_defaults_missing_fields_to_baseline_and_rejects_unknown() {
        let p: PasswordPolicy = serde_json::from_str(r#"{"min_length": 14}"#).unwrap();
        assert_eq!(
            p,
            PasswordPolicy {
                min_length: 14,
                ..PasswordPolicy::BASELINE
            }
        );
        assert!(serde_json::from_str::<PasswordPolicy>(r#"{"min_len": 4}"#).is_err());
        let round: PasswordPolicy =
            serde_json::from_str(&serde_json::to_string(&PasswordPolicy::BASELINE).unwrap())
                .unwrap();
        assert_eq!(round, PasswordPolicy::BASELINE);
    }
}
