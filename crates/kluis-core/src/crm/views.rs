//! Saved views of the record tables: a name and a table's query string (search, filters,
//! columns, sort), personal or shared with the organisation. Both are sealed (a view named
//! after a customer, or searching for one, says something about a person).

use crate::db::rows::SavedViewRow;
use kluis_types::SavedViewId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ObjectType;
use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result, UserId};

/// Views one person may save per table.
const MAX_PER_USER: i64 = 100;

/// A saved view as the pages show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SavedView {
    #[schema(value_type = uuid::Uuid)]
    pub id: SavedViewId,
    pub object_type: ObjectType,
    pub name: String,
    /// The table's query string, e.g. `q=jan&owner=me&col=email`.
    pub query: String,
    /// Shown to everyone in the organisation (else only to its maker).
    pub shared: bool,
    /// Made by the caller (who may delete it).
    pub mine: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SavedViewInput {
    /// 1 to 80 characters.
    pub name: String,
    /// At most 2,000 characters; no cursor.
    pub query: String,
    #[serde(default)]
    pub shared: bool,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    name: String,
    query: String,
}

fn open_view(keys: &TenantKeys, r: SavedViewRow, me: UserId) -> Result<SavedView> {
    let plain = keys.open("crm_saved_views", "view", r.id.0, &r.view)?;
    let s: Sealed =
        serde_json::from_slice(&plain).map_err(|_| Error::internal("stored view unreadable"))?;
    Ok(SavedView {
        id: r.id,
        object_type: ObjectType::parse(&r.object_type)
            .ok_or_else(|| Error::internal("unknown object type stored"))?,
        name: s.name,
        query: s.query,
        shared: r.shared,
        mine: r.user_id == me,
        created_at: rfc3339(r.created_at),
    })
}

impl Kluis {
    /// The views of a table the caller may use: shared ones and their own.
    pub async fn list_saved_views(&self, actor: &Actor, t: ObjectType) -> Result<Vec<SavedView>> {
        actor.require(Permission::CrmRead)?;
        let me = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        tx.saved_views(t.as_str(), me)
            .await?
            .into_iter()
            .map(|r| open_view(&keys, r, me))
            .collect()
    }

    /// Saves a view: personal for anyone who can read records, shared only for those who
    /// can change them.
    pub async fn create_saved_view(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        input: SavedViewInput,
    ) -> Result<SavedView> {
        actor.require(Permission::CrmRead)?;
        if input.shared {
            actor.require(Permission::CrmWrite)?;
        }
        let me = actor.require_user()?;
        let name = input.name.trim().to_owned();
        let n = name.chars().count();
        if n == 0 || n > 80 || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "invalid_name",
                "a name of 1 to 80 characters",
            ));
        }
        let query = input.query.trim().trim_start_matches('?').to_owned();
        if query.len() > 2000 || query.chars().any(char::is_control) {
            return Err(Error::validation(
                "query",
                "invalid_query",
                "at most 2,000 characters",
            ));
        }
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        if tx.count_saved_views(t.as_str(), me).await? >= MAX_PER_USER {
            return Err(Error::new(
                ErrorKind::Conflict,
                "too_many_views",
                "at most 100 saved views per table; delete one first",
            ));
        }
        let id = SavedViewId::new();
        let plain = serde_json::to_vec(&Sealed {
            name: name.clone(),
            query,
        })
        .map_err(|_| Error::internal("view encoding"))?;
        let row = SavedViewRow {
            id,
            object_type: t.as_str().to_owned(),
            user_id: me,
            shared: input.shared,
            view: keys.seal("crm_saved_views", "view", id.0, &plain)?,
            created_at: self.now(),
        };
        tx.insert_saved_view(&row).await?;
        let ev = Event::ok("saved_view.create", "saved_view", id)
            .with(json!({"object_type": t.as_str(), "shared": input.shared, "name": name}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        self.count_sealed(&mut tx, &keys, 1).await?;
        tx.commit().await?;
        open_view(&keys, row, me)
    }

    /// Deletes a view: one's own, or a shared one as an administrator.
    pub async fn delete_saved_view(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: SavedViewId,
    ) -> Result<()> {
        actor.require(Permission::CrmRead)?;
        let me = actor.require_user()?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let row = tx
            .saved_view(id)
            .await?
            .filter(|r| r.shared || r.user_id == me)
            .ok_or_else(Error::not_found)?;
        if row.user_id != me {
            actor.require(Permission::SettingsManage)?;
        }
        tx.delete_saved_view(id).await?;
        let ev = Event::ok("saved_view.delete", "saved_view", id)
            .with(json!({"object_type": row.object_type, "shared": row.shared}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
