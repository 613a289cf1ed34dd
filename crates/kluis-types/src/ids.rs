//! Typed identifiers. A `UserId` cannot be passed where a `TenantId` is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type))]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", sqlx(transparent))]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (v7) id: keeps B-tree inserts local and gives a stable cursor order.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A tenant (customer organisation).
    TenantId
);
id_type!(
    /// A user inside one tenant.
    UserId
);
id_type!(
    /// A server-side login session.
    SessionId
);
id_type!(
    /// A private app key (API key) of a tenant.
    ApiKeyId
);
id_type!(
    /// A platform administration key.
    PlatformKeyId
);
id_type!(
    /// A CRM record (contact, company, ...) of one tenant.
    RecordId
);
id_type!(
    /// A pipeline (deals or tickets) of one tenant.
    PipelineId
);
id_type!(
    /// A stage of a pipeline.
    StageId
);
id_type!(
    /// A custom field definition.
    CustomFieldId
);
id_type!(
    /// A tag of a tenant's catalogue.
    TagId
);
id_type!(
    /// A saved view of a record table.
    SavedViewId
);
id_type!(
    /// A custom role of a tenant (rights per object type, record scope).
    RoleId
);
id_type!(
    /// A team of users (record scope "team").
    TeamId
);

id_type!(
    /// A platform operator (support staff), outside every tenant.
    OperatorId
);
id_type!(
    /// A support-access grant: one operator, one tenant, at most 24 hours.
    SupportGrantId
);

impl TenantId {
    /// The nil id: the platform's own audit log and keys live under it. No tenant has it.
    pub const PLATFORM: TenantId = TenantId(Uuid::nil());
}
