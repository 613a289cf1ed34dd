//! Roles and statuses: enums from SQL to JSON. The store decodes the column into the enum (a
//! value outside the set is a corrupt row, not a string to compare), and serde writes the same
//! snake_case names the API has always shown.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stored or submitted value that names no member of the set. Carries the set's name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown {0}")]
pub struct UnknownValue(pub &'static str);

/// Declares a text-backed enum: `as_str`, `parse`, `ALL`, Display, FromStr, and (with the
/// `sqlx` feature) encoding and decoding as TEXT on both engines.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s).ok_or(UnknownValue($what))
            }
        }

        #[cfg(feature = "sqlx")]
        text_enum!(@sqlx $name, sqlx::Sqlite);
        #[cfg(feature = "sqlx")]
        text_enum!(@sqlx $name, sqlx::Postgres);
    };
    (@sqlx $name:ident, $db:ty) => {
        impl sqlx::Type<$db> for $name {
            fn type_info() -> <$db as sqlx::Database>::TypeInfo {
                <&str as sqlx::Type<$db>>::type_info()
            }
            fn compatible(ty: &<$db as sqlx::Database>::TypeInfo) -> bool {
                <&str as sqlx::Type<$db>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, $db> for $name {
            fn decode(
                value: <$db as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, $db>>::decode(value)?;
                Ok(s.parse::<$name>()?)
            }
        }

        impl<'q> sqlx::Encode<'q, $db> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <$db as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, $db>>::encode(self.as_str(), buf)
            }
        }
    };
}

text_enum!(
    /// A user's built-in role. What each may do is `kluis-core`'s permission table.
    Role, "role" {
        Owner = "owner",
        Admin = "admin",
        Manager = "manager",
        Member = "member",
        ReadOnly = "read_only",
    }
);

text_enum!(
    /// Whether a user or a tenant may act. Users are `active` or `disabled`; tenants are
    /// `active` or `suspended` (the database's CHECK constraints hold each to its pair).
    Status, "status" {
        Active = "active",
        Disabled = "disabled",
        Suspended = "suspended",
    }
);

impl Status {
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>().unwrap(), s);
        }
        assert_eq!("Owner".parse::<Role>(), Err(UnknownValue("role")));
    }
}
