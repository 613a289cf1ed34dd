//! Tags: a tenant's catalogue of labels (names sealed, unique through a blind index) and the
//! records that carry them. A tag in the trash keeps its records and comes back with them.

use crate::db::TenantTx;
use crate::db::rows::TagRow;
use kluis_types::TagId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tag {
    #[schema(value_type = uuid::Uuid)]
    pub id: TagId,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub created_at: String,
    pub updated_at: String,
    /// Set while the tag is in the trash.
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    /// 1 to 50 characters, unique (case-insensitive) in the organisation.
    pub name: String,
    /// `#rrggbb` (default grey).
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagUpdate {
    pub name: Option<String>,
    pub color: Option<String>,
}

const DEFAULT_COLOR: &str = "#6b7280";

fn tag_ctx(id: TagId) -> uuid::Uuid {
    id.0
}

fn check_name(raw: &str) -> Result<String> {
    let n = raw.trim();
    if n.is_empty() || n.chars().count() > 50 || n.chars().any(char::is_control) {
        return Err(Error::validation(
            "name",
            "invalid_name",
            "1 to 50 characters without control characters",
        ));
    }
    Ok(n.to_owned())
}

fn check_color(raw: &str) -> Result<String> {
    let c = raw.trim().to_ascii_lowercase();
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(Error::validation(
            "color",
            "invalid_color",
            "a colour such as #1f77b4",
        ));
    }
    Ok(c)
}

pub(super) fn name_bidx(keys: &TenantKeys, name: &str) -> Vec<u8> {
    keys.blind("crm.tag.name", &name.to_lowercase()).to_vec()
}

fn to_tag(keys: &TenantKeys, r: TagRow) -> Result<Tag> {
    Ok(Tag {
        name: keys.open_str("crm_tags", "name", tag_ctx(r.id), &r.name)?,
        id: r.id,
        color: r.color,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        deleted_at: r.deleted_at.map(rfc3339),
    })
}

fn duplicate() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "duplicate",
        "a tag with this name exists (maybe in the trash)",
    )
    .with_field("name")
}

impl Kluis {
    pub async fn list_tags(&self, actor: &Actor) -> Result<Vec<Tag>> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        tx.tags(true)
            .await?
            .into_iter()
            .map(|r| to_tag(&keys, r))
            .collect()
    }

    pub async fn create_tag(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: TagInput,
    ) -> Result<Tag> {
        actor.require(Permission::CrmWrite)?;
        let name = check_name(&input.name)?;
        let color = check_color(input.color.as_deref().unwrap_or(DEFAULT_COLOR))?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let bidx = name_bidx(&keys, &name);
        if tx.tags(true).await?.iter().any(|t| t.name_bidx == bidx) {
            return Err(duplicate());
        }
        let (id, now) = (TagId::new(), self.now());
        let row = TagRow {
            id,
            name: keys.seal_str("crm_tags", "name", tag_ctx(id), &name)?,
            name_bidx: bidx,
            color,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        tx.upsert_tag(&row).await?;
        self.audit_tag(
            &mut tx,
            &keys,
            actor,
            ctx,
            "tag.create",
            &row,
            json!({"name": name}),
        )
        .await?;
        self.count_sealed(&mut tx, &keys, 1).await?;
        tx.commit().await?;
        to_tag(&keys, row)
    }

    async fn tag_row(&self, tx: &mut TenantTx, id: TagId) -> Result<TagRow> {
        tx.tags(true)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(Error::not_found)
    }

    pub async fn update_tag(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: TagId,
        input: TagUpdate,
    ) -> Result<Tag> {
        actor.require(Permission::CrmWrite)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut row = self.tag_row(&mut tx, id).await?;
        if row.deleted_at.is_some() {
            return Err(Error::not_found());
        }
        let old = keys.open_str("crm_tags", "name", tag_ctx(id), &row.name)?;
        let mut details = json!({});
        if let Some(n) = &input.name {
            let name = check_name(n)?;
            let bidx = name_bidx(&keys, &name);
            if tx
                .tags(true)
                .await?
                .iter()
                .any(|t| t.name_bidx == bidx && t.id != id)
            {
                return Err(duplicate());
            }
            details["name"] = json!({"old": old, "new": name});
            row.name = keys.seal_str("crm_tags", "name", tag_ctx(id), &name)?;
            row.name_bidx = bidx;
            self.count_sealed(&mut tx, &keys, 1).await?;
        }
        if let Some(c) = &input.color {
            let color = check_color(c)?;
            details["color"] = json!({"old": row.color, "new": color});
            row.color = color;
        }
        row.updated_at = self.now();
        tx.upsert_tag(&row).await?;
        self.audit_tag(&mut tx, &keys, actor, ctx, "tag.update", &row, details)
            .await?;
        tx.commit().await?;
        to_tag(&keys, row)
    }

    /// Moves a tag to the trash (`deleted`) or back; records keep their tags either way.
    pub async fn set_tag_deleted(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: TagId,
        deleted: bool,
    ) -> Result<Tag> {
        actor.require(Permission::CrmWrite)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let mut row = self.tag_row(&mut tx, id).await?;
        if row.deleted_at.is_some() == deleted {
            return Err(Error::not_found());
        }
        row.deleted_at = deleted.then(|| self.now());
        row.updated_at = self.now();
        tx.upsert_tag(&row).await?;
        let action = if deleted { "tag.delete" } else { "tag.restore" };
        self.audit_tag(&mut tx, &keys, actor, ctx, action, &row, json!({}))
            .await?;
        tx.commit().await?;
        to_tag(&keys, row)
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit_tag(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        action: &'static str,
        row: &TagRow,
        details: serde_json::Value,
    ) -> Result<()> {
        let ev = Event::ok(action, "tag", row.id).with(details);
        self.audit(tx, keys, &actor_label(actor), ctx, ev).await
    }

    /// Live tags only; an id that is not one is refused.
    pub(super) async fn check_tags(&self, tx: &mut TenantTx, ids: &[TagId]) -> Result<Vec<TagId>> {
        if ids.len() > 100 {
            return Err(Error::validation("tag_ids", "too_many", "at most 100 tags"));
        }
        let live: Vec<TagId> = tx.tags(false).await?.into_iter().map(|t| t.id).collect();
        let mut out = Vec::new();
        for id in ids {
            if !live.contains(id) {
                return Err(Error::validation(
                    "tag_ids",
                    "unknown_tag",
                    "no tag with this id in your organisation",
                ));
            }
            if !out.contains(id) {
                out.push(*id);
            }
        }
        Ok(out)
    }
}
