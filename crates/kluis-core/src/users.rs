//! Tenant users: create (with a password, or invited without one), read, list, change role or
//! status, delete. A tenant always keeps at least one active owner.

use crate::db::TenantTx;
use crate::db::rows::{NewUser, UserPatch, UserRow};
use kluis_crypto::password;
use kluis_types::Status;
use serde::{Deserialize, Serialize};

use crate::audit::{Event, actor_label};
use crate::keys::TenantKeys;
use crate::settings::{check_password, effective_policy};
use crate::{
    Actor, Error, ErrorKind, Kluis, Page, Permission, RequestContext, Result, Role, UserId,
    blocking, page_limit, validate,
};
use serde_json::json;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// `active` or `disabled`.
    #[schema(value_type = String)]
    pub status: Status,
    /// False for invited users who have not set a password yet.
    pub has_password: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// Opens a stored user row (email and name are sealed).
pub(crate) fn user_from_row(keys: &TenantKeys, r: UserRow) -> Result<User> {
    let record = r.id.0;
    Ok(User {
        id: r.id,
        role: r.role,
        email: keys.open_str("users", "email", record, &r.email)?,
        display_name: keys.open_str("users", "display_name", record, &r.display_name)?,
        status: r.status,
        has_password: r.password_hash.is_some(),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    })
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// Optional: without one the user is invited and cannot sign in until a password is set.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `active` or `disabled`. Disabling signs the user out everywhere.
    pub status: Option<String>,
    /// Language of the user's emails (`en` or `nl`); without one the organisation's is used.
    pub locale: Option<crate::mail::Locale>,
}

/// Validates and inserts a user inside an open tenant transaction (shared by setup, the API
/// and the console).
pub(crate) async fn insert_user(
    kluis: &Kluis,
    tx: &mut TenantTx,
    input: &NewUserInput,
    now: i64,
) -> Result<User> {
    let email = validate::email("email", &input.email)?;
    let display_name = validate::name("display_name", &input.display_name)?;
    let hash = match &input.password {
        Some(pw) => {
            let policy = effective_policy(tx).await?;
            check_password(&policy, pw)?;
            let pw = pw.clone();
            Some(blocking(move || password::hash_password(&pw)).await??)
        }
        None => None,
    };
    let keys = kluis.keys(tx).await?;
    let id = UserId::new();
    let hash = hash
        .map(|phc| crate::passwords::seal(&keys, id.0, &phc))
        .transpose()?;
    let bidx = keys.email_index(&email);
    tx.insert_user(&NewUser {
        id,
        email_bidx: &bidx,
        email: &keys.seal_str("users", "email", id.0, email.as_str())?,
        display_name: &keys.seal_str("users", "display_name", id.0, &display_name)?,
        role: input.role,
        password_hash: hash.as_deref(),
        now,
    })
    .await
    .map_err(|e| match Error::from(e) {
        c if c.kind == ErrorKind::Conflict => Error::new(
            ErrorKind::Conflict,
            "email_taken",
            "a user with this email already exists",
        )
        .with_field("email"),
        other => other,
    })?;
    kluis
        .count_sealed(tx, &keys, 2 + i64::from(hash.is_some()))
        .await?;
    user_from_row(&keys, tx.user(id).await?.ok_or_else(Error::not_found)?)
}

impl Kluis {
    pub async fn create_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: NewUserInput,
    ) -> Result<User> {
        actor.require(Permission::UsersManage)?;
        if input.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
        }
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let user = insert_user(self, &mut tx, &input, self.now()).await?;
        let keys = self.keys(&mut tx).await?;
        // Invited users get an email with a link to choose their password (when this server
        // sends email; otherwise an operator sets the password).
        let emailed = if user.has_password {
            false
        } else {
            self.queue_invitation(&mut tx, &keys, user.id).await?
        };
        let ev = Event::ok("user.create", "user", user.id).with(json!({
            "email": user.email, "role": user.role, "invited": !user.has_password,
            "invitation_emailed": emailed
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        if emailed {
            self.wake_mailer(actor.tenant());
        }
        Ok(user)
    }

    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<User> {
        actor.require(Permission::UsersRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        user_from_row(&keys, tx.user(id).await?.ok_or_else(Error::not_found)?)
    }

    pub async fn list_users(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<User>> {
        actor.require(Permission::UsersRead)?;
        let after = validate::cursor::<UserId>(cursor)?;
        let limit = page_limit(limit)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let rows = tx.list_users(after, limit + 1).await?;
        let page = page(
            rows,
            limit,
            |r| user_from_row(&keys, r),
            |u: &User| u.id.to_string(),
        )?;
        drop(tx);
        // Bulk reads of personal data are recorded as counts.
        let mut w = self.store.tenant(actor.tenant()).begin().await?;
        let ev = Event {
            action: "user.list",
            success: true,
            object_type: Some("user"),
            object_id: None,
            details: json!({"count": page.items.len()}),
        };
        self.audit(&mut w, &keys, &actor_label(actor), ctx, ev)
            .await?;
        w.commit().await?;
        Ok(page)
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: UserId,
        up: UserUpdate,
    ) -> Result<User> {
        actor.require(Permission::UsersManage)?;
        let display_name = up
            .display_name
            .as_deref()
            .map(|n| validate::name("display_name", n))
            .transpose()?;
        let status = match up.status.as_deref().map(Status::parse) {
            None => None,
            Some(Some(s @ (Status::Active | Status::Disabled))) => Some(s),
            Some(_) => {
                return Err(Error::validation(
                    "status",
                    "invalid_status",
                    "must be `active` or `disabled`",
                ));
            }
        };
        let now = self.now();
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let current = tx.user(id).await?.ok_or_else(Error::not_found)?;
        let was_owner = current.role == Role::Owner;
        let becomes_owner = up.role == Some(Role::Owner);
        if was_owner || becomes_owner {
            actor.require(Permission::OwnersManage)?;
        }
        let loses_owner = was_owner
            && current.status.is_active()
            && (up.role.is_some_and(|r| r != Role::Owner) || status == Some(Status::Disabled));
        if loses_owner && tx.count_active_users_with_role(Role::Owner).await? <= 1 {
            return Err(last_owner());
        }
        let sealed_name = display_name
            .as_deref()
            .map(|n| keys.seal_str("users", "display_name", id.0, n))
            .transpose()?;
        tx.update_user(
            id,
            &UserPatch {
                display_name: sealed_name.as_deref(),
                role: up.role,
                status,
                password_hash: None,
            },
            now,
        )
        .await?;
        let revoked = match status {
            Some(Status::Disabled) => Some(self.deprovision(&mut tx, id, now).await?),
            _ => None,
        };
        let old_locale = tx.user_locale(id).await?;
        if let Some(l) = up.locale {
            tx.set_user_locale(id, Some(l.as_str())).await?;
        }
        if sealed_name.is_some() {
            self.count_sealed(&mut tx, &keys, 1).await?;
        }
        let before = user_from_row(&keys, current)?;
        let user = user_from_row(&keys, tx.user(id).await?.ok_or_else(Error::not_found)?)?;
        let mut changed = serde_json::Map::new();
        if before.display_name != user.display_name {
            changed.insert(
                "display_name".into(),
                json!({"old": before.display_name, "new": user.display_name}),
            );
        }
        if before.role != user.role {
            changed.insert("role".into(), json!({"old": before.role, "new": user.role}));
        }
        if before.status != user.status {
            changed.insert(
                "status".into(),
                json!({"old": before.status, "new": user.status}),
            );
        }
        if let Some(l) = up.locale
            && old_locale.as_deref() != Some(l.as_str())
        {
            changed.insert(
                "locale".into(),
                json!({"old": old_locale, "new": l.as_str()}),
            );
        }
        let mut details = json!({"changed": changed});
        if let Some((sessions, api_keys)) = revoked {
            details["sessions_revoked"] = json!(sessions);
            details["api_keys_revoked"] = json!(api_keys);
        }
        let ev = Event::ok("user.update", "user", id).with(details);
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        if revoked.is_some_and(|(_, keys)| keys > 0) {
            self.api_keys_changed(actor.tenant()).await;
        }
        Ok(user)
    }

    pub async fn delete_user(&self, actor: &Actor, ctx: &RequestContext, id: UserId) -> Result<()> {
        actor.require(Permission::UsersManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let current = tx.user(id).await?.ok_or_else(Error::not_found)?;
        if current.role == Role::Owner {
            actor.require(Permission::OwnersManage)?;
            if current.status.is_active()
                && tx.count_active_users_with_role(Role::Owner).await? <= 1
            {
                return Err(last_owner());
            }
        }
        let gone = user_from_row(&keys, current)?;
        let (_, api_keys) = self.deprovision(&mut tx, id, self.now()).await?;
        tx.delete_user(id).await?;
        let ev = Event::ok("user.delete", "user", id)
            .with(json!({"email": gone.email, "role": gone.role, "api_keys_revoked": api_keys}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        if api_keys > 0 {
            self.api_keys_changed(actor.tenant()).await;
        }
        Ok(())
    }
}

impl Kluis {
    /// Ends a user's access at once, in the caller's transaction: their sessions and the API
    /// keys they created (keys are issued by a person; when that person leaves, whoever takes
    /// over issues new ones). Disabling, deleting and SCIM deprovisioning all come here.
    pub(crate) async fn deprovision(
        &self,
        tx: &mut crate::db::TenantTx,
        id: UserId,
        now: i64,
    ) -> Result<(u64, usize)> {
        let sessions = tx.revoke_user_sessions(id, None, now).await?;
        let keys = tx.revoke_api_keys_created_by(id, now).await?;
        Ok((sessions, keys.len()))
    }
}

fn last_owner() -> Error {
    Error::new(
        ErrorKind::Conflict,
        "last_owner",
        "a tenant must keep at least one active owner",
    )
}

/// Builds a page from `limit + 1` rows: the extra row only tells whether there is a next page.
pub(crate) fn page<R, T>(
    mut rows: Vec<R>,
    limit: i64,
    convert: impl Fn(R) -> Result<T>,
    cursor_of: impl Fn(&T) -> String,
) -> Result<Page<T>> {
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let items = rows.into_iter().map(convert).collect::<Result<Vec<T>>>()?;
    let next_cursor = if more {
        items.last().map(&cursor_of)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
