//! Sealing of record fields and versions, and the blind-index entries of a record: the only
//! place a record's plaintext becomes ciphertext and back.

use super::*;

pub(super) fn record_ctx_id(id: RecordId) -> Uuid {
    id.0
}

pub(crate) fn open_fields(keys: &TenantKeys, r: &CrmRecordRow) -> Result<Map<String, Value>> {
    let plain = keys.open("crm_records", "fields", record_ctx_id(r.id), &r.fields)?;
    serde_json::from_slice(&plain).map_err(|_| Error::internal("stored record fields unreadable"))
}

pub(super) fn to_record(keys: &TenantKeys, r: CrmRecordRow) -> Result<Record> {
    let fields = open_fields(keys, &r)?;
    Ok(Record {
        id: r.id,
        object_type: ObjectType::parse(&r.object_type)
            .ok_or_else(|| Error::internal("unknown object type stored"))?,
        revision: r.revision,
        owner_id: r.owner_id,
        company_id: r.company_id,
        fields,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        created_by: r.created_by,
        updated_by: r.updated_by,
        deleted_at: r.deleted_at.map(rfc3339),
        deleted_by: r.deleted_by,
        deal: matches!(r.object_type.as_str(), "deal" | "ticket").then_some(r.deal),
        outcome: None,
        contact_ids: None,
        related_ids: None,
        task: (r.object_type == "task").then(|| deals::TaskView::from(&r.task)),
        tag_ids: Vec::new(),
        sensitive: guard::parse_flags(r.sensitive.as_deref()),
    })
}

/// Blind-index entries of a record: built-in lookup fields and unique custom fields.
pub(crate) fn lookups(
    keys: &TenantKeys,
    schema: &Schema,
    f: &Map<String, Value>,
) -> Vec<(String, [u8; 32])> {
    let t = schema.t;
    let builtin = t.fields().iter().filter(|s| s.lookup).filter_map(|s| {
        let v = f.get(s.name)?.as_str()?;
        let key = fields::lookup_key(s, v)?;
        Some((
            s.name.to_owned(),
            keys.blind(&lookup_domain(t, s.name), &key),
        ))
    });
    let unique = schema.custom.iter().filter(|d| d.unique).filter_map(|d| {
        let name = format!("custom.{}", d.key);
        let key = custom::unique_key(d, f.get(&name)?)?;
        let bidx = keys.blind(&lookup_domain(t, &name), &key);
        Some((name, bidx))
    });
    builtin.chain(unique).collect()
}

pub(super) fn lookup_domain(t: ObjectType, field: &str) -> String {
    format!("crm.{}.{field}", t.as_str())
}

/// What a version row holds (sealed): the state, with its revision inside so a sealed blob moved
/// to another revision row is noticed.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredVersion {
    pub(super) revision: i64,
    pub(super) fields: Map<String, Value>,
    pub(super) owner_id: Option<UserId>,
    pub(super) company_id: Option<RecordId>,
    #[serde(default)]
    pub(super) deal: DealCols,
    #[serde(default)]
    pub(super) task: TaskCols,
}

pub(super) fn open_version(
    keys: &TenantKeys,
    id: RecordId,
    revision: i64,
    sealed: &[u8],
) -> Result<StoredVersion> {
    let plain = keys.open("crm_versions", "fields", record_ctx_id(id), sealed)?;
    let v: StoredVersion =
        serde_json::from_slice(&plain).map_err(|_| Error::internal("stored version unreadable"))?;
    // A sealed version copied onto another revision row of the same record opens (same AAD),
    // but says which revision it is.
    if v.revision != revision {
        return Err(Error::internal(
            "stored version does not match its revision",
        ));
    }
    Ok(v)
}
