//! Custom fields (per object type, defined by tenant admins) and custom values (tenant-wide
//! named values for templates).
//!
//! A custom field's value lives in the record's sealed field map under `custom.<key>`, so
//! versions, the trash, the audit trail and the sensitive-data guard cover it without extra
//! code; `unique` fields also get a blind index for duplicate detection.

use crate::db::TenantTx;
use crate::db::rows::CustomFieldRow;
use kluis_types::{CustomFieldId, Phone};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ObjectType;
use super::fields::{self, Field, Kind};
use crate::audit::{Event, actor_label};
use crate::users::rfc3339;
use crate::{Actor, Error, ErrorKind, Kluis, Permission, RequestContext, Result};

/// The types a custom field can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomKind {
    Text,
    LongText,
    /// A JSON number.
    Number,
    /// An integer amount in minor units (cents) of the field's `currency`.
    Currency,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    Boolean,
    /// One of `options`.
    SingleSelect,
    /// A list of distinct `options`.
    MultiSelect,
    Email,
    Phone,
    Url,
}

impl CustomKind {
    fn parse(s: &str) -> Option<CustomKind> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }
    fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

/// A custom field as the write path needs it.
#[derive(Debug, Clone)]
pub(crate) struct CustomDef {
    pub key: String,
    pub kind: CustomKind,
    pub required: bool,
    pub unique: bool,
    pub options: Vec<String>,
}

/// The fields a record of one type may hold: built-in and (live) custom ones.
pub(crate) struct Schema {
    pub t: ObjectType,
    pub custom: Vec<CustomDef>,
}

impl Schema {
    /// The fields whose values must be unique among live records: the type's built-in dedupe
    /// field (a contact's email, a company's domain) and every custom field marked unique.
    /// A single create and an import check the same list.
    pub(crate) fn unique_fields(&self) -> Vec<String> {
        self.t
            .dedupe_field()
            .map(str::to_owned)
            .into_iter()
            .chain(
                self.custom
                    .iter()
                    .filter(|d| d.unique)
                    .map(|d| format!("custom.{}", d.key)),
            )
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredOptions {
    #[serde(default)]
    options: Vec<String>,
    #[serde(default)]
    currency: Option<String>,
}

/// A custom field definition as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CustomField {
    #[schema(value_type = uuid::Uuid)]
    pub id: CustomFieldId,
    pub object_type: ObjectType,
    /// The value's name in `fields`: `custom.<key>`.
    pub key: String,
    pub label: String,
    pub kind: CustomKind,
    pub required: bool,
    pub unique: bool,
    pub options: Vec<String>,
    pub currency: Option<String>,
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Set while the definition is in the trash (its values are kept, hidden).
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldInput {
    pub object_type: ObjectType,
    /// `a-z`, `0-9`, `_`, starting with a letter, at most 40; cannot change later.
    pub key: String,
    pub label: String,
    /// Cannot change later.
    pub kind: CustomKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    /// Select fields: the allowed values.
    #[serde(default)]
    pub options: Vec<String>,
    /// Currency fields: ISO 4217 (default EUR).
    pub currency: Option<String>,
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldUpdate {
    pub label: Option<String>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
    pub options: Option<Vec<String>>,
    pub position: Option<i64>,
}

fn to_def(r: &CustomFieldRow) -> Option<CustomDef> {
    let o: StoredOptions = serde_json::from_str(&r.options).unwrap_or_default();
    Some(CustomDef {
        key: r.key.clone(),
        kind: CustomKind::parse(&r.kind)?,
        required: r.required,
        unique: r.is_unique,
        options: o.options,
    })
}

fn to_api(r: CustomFieldRow) -> Result<CustomField> {
    let o: StoredOptions = serde_json::from_str(&r.options).unwrap_or_default();
    Ok(CustomField {
        id: r.id,
        object_type: ObjectType::parse(&r.object_type)
            .ok_or_else(|| Error::internal("unknown object type stored"))?,
        kind: CustomKind::parse(&r.kind).ok_or_else(|| Error::internal("unknown kind stored"))?,
        key: r.key,
        label: r.label,
        required: r.required,
        unique: r.is_unique,
        options: o.options,
        currency: o.currency,
        position: r.position,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        deleted_at: r.deleted_at.map(rfc3339),
    })
}

fn invalid(key: &str, code: &'static str, message: &str) -> Error {
    Error::validation(&format!("fields.custom.{key}"), code, message)
}

/// Validates and normalises a custom value. Errors name the field, never the value.
pub(crate) fn check_value(d: &CustomDef, v: &Value) -> Result<Value> {
    let k = &d.key;
    let as_str = |max: usize, kind: Kind| -> Result<Value> {
        let s = v
            .as_str()
            .ok_or_else(|| invalid(k, "invalid_type", "must be a string"))?;
        let spec = Field {
            name: "",
            kind,
            max,
            lookup: false,
        };
        fields::check_one(&spec, s)
            .map(Value::String)
            .map_err(|e| e.with_field(format!("fields.custom.{k}")))
    };
    match d.kind {
        CustomKind::Text => as_str(1000, Kind::Text),
        CustomKind::LongText => as_str(50_000, Kind::LongText),
        CustomKind::Email => as_str(254, Kind::Email),
        CustomKind::Phone => as_str(40, Kind::Phone),
        CustomKind::Url => as_str(2000, Kind::Url),
        CustomKind::Number => match v.as_f64() {
            Some(n) if n.is_finite() => Ok(v.clone()),
            _ => Err(invalid(k, "invalid_type", "must be a number")),
        },
        CustomKind::Currency => match v.as_i64() {
            Some(n) if (-1_000_000_000_000_000..=1_000_000_000_000_000).contains(&n) => {
                Ok(v.clone())
            }
            _ => Err(invalid(
                k,
                "invalid_type",
                "must be a whole amount in minor units (cents)",
            )),
        },
        CustomKind::Boolean => match v {
            Value::Bool(_) => Ok(v.clone()),
            _ => Err(invalid(k, "invalid_type", "must be true or false")),
        },
        CustomKind::Date => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(k, "invalid_type", "must be a string"))?;
            super::deals::check_date(s)
                .map(Value::String)
                .map_err(|e| e.with_field(format!("fields.custom.{k}")))
        }
        CustomKind::Datetime => {
            let s = v
                .as_str()
                .ok_or_else(|| invalid(k, "invalid_type", "must be a string"))?;
            let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map_err(|_| invalid(k, "invalid_datetime", "must be an RFC 3339 time"))?;
            t.to_offset(time::UtcOffset::UTC)
                .format(&time::format_description::well_known::Rfc3339)
                .map(Value::String)
                .map_err(|_| Error::internal("time format"))
        }
        CustomKind::SingleSelect => match v.as_str() {
            Some(s) if d.options.iter().any(|o| o == s) => Ok(v.clone()),
            _ => Err(invalid(
                k,
                "invalid_option",
                "must be one of the field's options",
            )),
        },
        CustomKind::MultiSelect => {
            let items = v
                .as_array()
                .ok_or_else(|| invalid(k, "invalid_type", "must be a list of options"))?;
            let mut out: Vec<String> = Vec::new();
            for i in items {
                match i.as_str() {
                    Some(s) if d.options.iter().any(|o| o == s) => {
                        if !out.iter().any(|o| o == s) {
                            out.push(s.to_owned());
                        }
                    }
                    _ => {
                        return Err(invalid(
                            k,
                            "invalid_option",
                            "every item must be one of the field's options",
                        ));
                    }
                }
            }
            // Stored in the options' order, so equal selections compare equal.
            out.sort_by_key(|s| d.options.iter().position(|o| o == s));
            Ok(json!(out))
        }
    }
}

/// The normalised string a unique custom value is indexed under.
pub(crate) fn unique_key(d: &CustomDef, v: &Value) -> Option<String> {
    match (d.kind, v) {
        (CustomKind::Phone, Value::String(s)) => Phone::parse(s).ok().map(Phone::into_string),
        // Emails were parsed into their normal form when written (`kluis_types::Email`).
        (CustomKind::Email, Value::String(s)) => Some(s.clone()),
        // Text and URLs are unique regardless of case.
        (CustomKind::Text | CustomKind::Url, Value::String(s)) => Some(s.trim().to_lowercase()),
        (_, Value::String(s)) => Some(s.clone()),
        (_, other) => Some(other.to_string()),
    }
}

fn check_key(key: &str) -> Result<()> {
    let ok = (1..=40).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::validation(
            "key",
            "invalid_key",
            "a-z, 0-9 and _, starting with a letter, at most 40 characters",
        ))
    }
}

fn check_options(kind: CustomKind, options: &[String]) -> Result<()> {
    let select = matches!(kind, CustomKind::SingleSelect | CustomKind::MultiSelect);
    if select && !(1..=200).contains(&options.len()) {
        return Err(Error::validation(
            "options",
            "invalid_options",
            "a select field needs 1 to 200 options",
        ));
    }
    if !select && !options.is_empty() {
        return Err(Error::validation(
            "options",
            "not_applicable",
            "only select fields have options",
        ));
    }
    for (i, o) in options.iter().enumerate() {
        if o.trim().is_empty() || o.chars().count() > 100 || o.chars().any(char::is_control) {
            return Err(Error::validation(
                &format!("options[{i}]"),
                "invalid_option",
                "options are 1 to 100 characters",
            ));
        }
        if options[..i].contains(o) {
            return Err(Error::validation(
                &format!("options[{i}]"),
                "duplicate_option",
                "options must be distinct",
            ));
        }
    }
    Ok(())
}

impl Kluis {
    /// The write schema of a type: its live custom fields.
    pub(crate) async fn schema(&self, tx: &mut TenantTx, t: ObjectType) -> Result<Schema> {
        let custom = tx
            .custom_fields(Some(t.as_str()), false)
            .await?
            .iter()
            .filter_map(to_def)
            .collect();
        Ok(Schema { t, custom })
    }

    pub async fn list_custom_fields(
        &self,
        actor: &Actor,
        t: Option<ObjectType>,
    ) -> Result<Vec<CustomField>> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        tx.custom_fields(t.map(ObjectType::as_str), true)
            .await?
            .into_iter()
            .map(to_api)
            .collect()
    }

    pub async fn create_custom_field(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: CustomFieldInput,
    ) -> Result<CustomField> {
        actor.require(Permission::SettingsManage)?;
        check_key(&input.key)?;
        crate::validate::name("label", &input.label)?;
        check_options(input.kind, &input.options)?;
        let currency = match (input.kind, &input.currency) {
            (CustomKind::Currency, c) => {
                Some(super::deals::check_currency(c.as_deref().unwrap_or("EUR"))?)
            }
            (_, Some(_)) => {
                return Err(Error::validation(
                    "currency",
                    "not_applicable",
                    "only currency fields have a currency",
                ));
            }
            (_, None) => None,
        };
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let existing = tx
            .custom_fields(Some(input.object_type.as_str()), true)
            .await?;
        if existing.iter().any(|f| f.key == input.key) {
            return Err(Error::new(
                ErrorKind::Conflict,
                "duplicate",
                "this object type already has a custom field with this key (maybe in the trash)",
            )
            .with_field("key"));
        }
        if existing.iter().filter(|f| f.deleted_at.is_none()).count() >= 200 {
            return Err(Error::validation(
                "key",
                "too_many",
                "at most 200 custom fields per object type",
            ));
        }
        let now = self.now();
        let row = CustomFieldRow {
            id: CustomFieldId::new(),
            object_type: input.object_type.as_str().into(),
            key: input.key,
            label: input.label.trim().to_owned(),
            kind: input.kind.as_str(),
            required: input.required,
            is_unique: input.unique,
            options: serde_json::to_string(&StoredOptions {
                options: input.options,
                currency,
            })
            .map_err(|_| Error::internal("options encoding"))?,
            position: input.position.unwrap_or(existing.len() as i64),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        tx.upsert_custom_field(&row).await?;
        self.audit_custom_field(&mut tx, actor, ctx, "custom_field.create", &row)
            .await?;
        tx.commit().await?;
        to_api(row)
    }

    async fn custom_field_row(
        &self,
        tx: &mut TenantTx,
        id: CustomFieldId,
    ) -> Result<CustomFieldRow> {
        tx.custom_fields(None, true)
            .await?
            .into_iter()
            .find(|f| f.id == id)
            .ok_or_else(Error::not_found)
    }

    /// Label, flags, options and position; key and kind never change (stored values depend on
    /// them). Removing an option does not rewrite records that use it.
    pub async fn update_custom_field(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: CustomFieldId,
        input: CustomFieldUpdate,
    ) -> Result<CustomField> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let mut row = self.custom_field_row(&mut tx, id).await?;
        if row.deleted_at.is_some() {
            return Err(Error::not_found());
        }
        let kind = CustomKind::parse(&row.kind).ok_or_else(|| Error::internal("kind"))?;
        if let Some(l) = &input.label {
            row.label = crate::validate::name("label", l)?;
        }
        if let Some(o) = input.options {
            check_options(kind, &o)?;
            let mut stored: StoredOptions = serde_json::from_str(&row.options).unwrap_or_default();
            stored.options = o;
            row.options =
                serde_json::to_string(&stored).map_err(|_| Error::internal("options encoding"))?;
        }
        row.required = input.required.unwrap_or(row.required);
        let was_unique = row.is_unique;
        row.is_unique = input.unique.unwrap_or(row.is_unique);
        row.position = input.position.unwrap_or(row.position);
        row.updated_at = self.now();
        tx.upsert_custom_field(&row).await?;
        if row.is_unique && !was_unique {
            self.reindex_unique(&mut tx, &row).await?;
        }
        self.audit_custom_field(&mut tx, actor, ctx, "custom_field.update", &row)
            .await?;
        tx.commit().await?;
        to_api(row)
    }

    /// Moves a definition to the trash (`deleted`) or back. Values stay in the records, hidden
    /// while the field is in the trash.
    pub async fn set_custom_field_deleted(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: CustomFieldId,
        deleted: bool,
    ) -> Result<CustomField> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let mut row = self.custom_field_row(&mut tx, id).await?;
        if row.deleted_at.is_some() == deleted {
            return Err(Error::not_found());
        }
        row.deleted_at = deleted.then(|| self.now());
        row.updated_at = self.now();
        tx.upsert_custom_field(&row).await?;
        if !deleted && row.is_unique {
            self.reindex_unique(&mut tx, &row).await?;
        }
        let action = if deleted {
            "custom_field.delete"
        } else {
            "custom_field.restore"
        };
        self.audit_custom_field(&mut tx, actor, ctx, action, &row)
            .await?;
        tx.commit().await?;
        to_api(row)
    }

    /// A field just became unique (or came back from the trash as unique): index the values
    /// records already hold, refusing if two live records share one. One pass over the type's
    /// records, inside the caller's transaction.
    async fn reindex_unique(&self, tx: &mut TenantTx, row: &CustomFieldRow) -> Result<()> {
        let t = ObjectType::parse(&row.object_type)
            .ok_or_else(|| Error::internal("unknown object type stored"))?;
        let keys = self.keys(tx).await?;
        let schema = self.schema(tx, t).await?;
        let name = format!("custom.{}", row.key);
        let mut seen = std::collections::HashSet::new();
        for deleted in [false, true] {
            let filter = crate::db::rows::RecordFilter {
                object_type: Some(t.as_str().to_owned()),
                deleted,
                ..Default::default()
            };
            let mut after = None;
            loop {
                let rows = tx.list_records(&filter, after, 500).await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id);
                for r in rows {
                    let fields = super::open_fields(&keys, &r)?;
                    let entries = super::lookups(&keys, &schema, &fields);
                    if !deleted
                        && let Some((_, bidx)) = entries.iter().find(|(f, _)| *f == name)
                        && !seen.insert(*bidx)
                    {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            "duplicate_values",
                            "records already share a value of this field; make them distinct first",
                        )
                        .with_field("unique"));
                    }
                    tx.set_lookups(t.as_str(), r.id, &entries).await?;
                }
            }
        }
        Ok(())
    }

    async fn audit_custom_field(
        &self,
        tx: &mut TenantTx,
        actor: &Actor,
        ctx: &RequestContext,
        action: &'static str,
        row: &CustomFieldRow,
    ) -> Result<()> {
        let keys = self.keys(tx).await?;
        let ev = Event::ok(action, "custom_field", row.id).with(json!({
            "object_type": row.object_type, "key": row.key, "label": row.label, "kind": row.kind,
            "required": row.required, "unique": row.is_unique,
        }));
        self.audit(tx, &keys, &actor_label(actor), ctx, ev).await
    }
}

// ---- custom values ---------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomValue {
    pub key: String,
    pub value: String,
    pub updated_at: String,
    pub updated_by: String,
    /// Set while the value is in the trash.
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomValueInput {
    /// At most 10,000 characters.
    pub value: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomValue {
    /// `a-z`, `0-9`, `_`, starting with a letter, at most 40.
    pub key: String,
    /// At most 10,000 characters.
    pub value: String,
}

pub(crate) fn value_ctx(key: &str) -> uuid::Uuid {
    // Sealing context record id: derived from the key, so a value moved to another key fails
    // to open.
    use sha2::Digest;
    let h = sha2::Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Uuid::from_bytes(b)
}

impl Kluis {
    pub async fn list_custom_values(&self, actor: &Actor) -> Result<Vec<CustomValue>> {
        actor.require(Permission::CrmRead)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        tx.custom_values()
            .await?
            .into_iter()
            .map(|r| {
                Ok(CustomValue {
                    value: keys.open_str(
                        "crm_custom_values",
                        "value",
                        value_ctx(&r.key),
                        &r.value,
                    )?,
                    key: r.key,
                    updated_at: rfc3339(r.updated_at),
                    updated_by: r.updated_by,
                    deleted_at: r.deleted_at.map(rfc3339),
                })
            })
            .collect()
    }

    /// Creates (`create`) or changes an existing custom value.
    pub async fn put_custom_value(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        key: &str,
        input: CustomValueInput,
        create: bool,
    ) -> Result<CustomValue> {
        actor.require(Permission::SettingsManage)?;
        if create {
            check_key(key)?;
        }
        if input.value.chars().count() > 10_000 {
            return Err(Error::validation(
                "value",
                "too_long",
                "at most 10,000 characters",
            ));
        }
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let old = match tx.custom_values().await?.into_iter().find(|r| r.key == key) {
            Some(_) if create => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "duplicate",
                    "a custom value with this key exists (maybe in the trash); change or restore it",
                )
                .with_field("key"));
            }
            Some(r) if r.deleted_at.is_some() => return Err(Error::not_found()),
            Some(r) => {
                Some(keys.open_str("crm_custom_values", "value", value_ctx(key), &r.value)?)
            }
            None if create => None,
            None => return Err(Error::not_found()),
        };
        let sealed = keys.seal_str("crm_custom_values", "value", value_ctx(key), &input.value)?;
        let now = self.now();
        tx.put_custom_value(key, &sealed, now, &label).await?;
        let action = if create {
            "custom_value.create"
        } else {
            "custom_value.update"
        };
        let ev =
            Event::ok(action, "custom_value", key).with(json!({"old": old, "new": input.value}));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        self.count_sealed(&mut tx, &keys, 1).await?;
        tx.commit().await?;
        Ok(CustomValue {
            key: key.to_owned(),
            value: input.value,
            updated_at: rfc3339(now),
            updated_by: label,
            deleted_at: None,
        })
    }

    /// Moves a custom value to the trash (`deleted`) or back; the trash retention purges it.
    pub async fn set_custom_value_deleted(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        key: &str,
        deleted: bool,
    ) -> Result<()> {
        actor.require(Permission::SettingsManage)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let Some(r) = tx
            .custom_values()
            .await?
            .into_iter()
            .find(|r| r.key == key && r.deleted_at.is_some() != deleted)
        else {
            return Err(Error::not_found());
        };
        let value = keys.open_str("crm_custom_values", "value", value_ctx(key), &r.value)?;
        tx.set_custom_value_deleted(key, deleted.then(|| self.now()))
            .await?;
        let action = if deleted {
            "custom_value.delete"
        } else {
            "custom_value.restore"
        };
        let ev = Event::ok(action, "custom_value", key).with(json!({"value": value}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
