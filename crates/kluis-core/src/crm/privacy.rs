//! Data-subject requests (GDPR art. 15-20): find everything about one person, export it, erase it.
//!
//! **Finding** starts from the blind indexes (email, phone and mobile of contacts and companies,
//! trash included), adds the notes, tasks, tickets and deals linked to a matched contact (they
//! are about that person), and then opens every record, every earlier version and every audit
//! event of the tenant to find the identifiers mentioned anywhere else (a note's body, a
//! changed value in an event, an email address since replaced). The full pass is what makes
//! the answer complete: a blind index only knows current values of lookup fields.
//!
//! **Erasure** purges every record found (versions, lookups, tags, files, associations go with
//! it), drops stored Idempotency-Key responses that mention the subject, and redacts the audit
//! events that do: their sealed details are replaced by `{"redacted_by": <erasure event>}`.
//! The leaf hashes stay, so the Merkle tree and every signed checkpoint still verify; the
//! erasure event (written first, in the same transaction) lists the redacted events, and
//! verification accepts a redacted event only when that later, verified event lists it.
//! A checkpoint is signed before redacting, so the leaves being redacted are under a signature.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::audit::{AuditEvent, Redacted};
use crate::db::privacy::PrivacyRequestRow;
use crate::db::rows::AuditFilter;

/// The audit action of an erasure; verification reads these events (see `check_redactions`).
pub const ERASE_ACTION: &str = "privacy.erase";

/// Requests listed at most.
const LIST_MAX: i64 = 500;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPrivacyRequest {
    /// `access` (art. 15/20: a copy of the data) or `erasure` (art. 17).
    pub kind: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrivacyRequest {
    pub id: Uuid,
    pub kind: String,
    /// `open`, `exported` or `erased`.
    pub status: String,
    /// The identifiers asked for; gone (null) once the data is erased.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub created_at: String,
    pub created_by: String,
    /// The legal deadline: one month after receipt (art. 12(3)).
    pub due_at: String,
    pub exported_at: Option<String>,
    pub erased_at: Option<String>,
    /// Not fulfilled (access: exported; erasure: erased) and past its deadline.
    pub overdue: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Subject {
    email: Option<String>,
    /// E.164.
    phone: Option<String>,
}

/// One record found, with every version of it.
#[derive(Debug, Clone, Serialize)]
pub struct FoundRecord {
    pub object_type: ObjectType,
    pub id: RecordId,
    /// Why: `email`, `phone` (blind index), `linked` (to a matched contact), `mentioned`.
    pub reason: String,
    pub in_trash: bool,
    pub revision: i64,
    pub fields: Map<String, Value>,
    pub versions: Vec<FoundVersion>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FoundVersion {
    pub revision: i64,
    pub changed_at: String,
    pub fields: Map<String, Value>,
}

/// Everything found about one subject.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectData {
    pub request: PrivacyRequest,
    pub records: Vec<FoundRecord>,
    /// Events about a found record or mentioning the subject.
    pub audit_events: Vec<AuditEvent>,
    /// Stored Idempotency-Key responses that mention the subject (counted, not shown).
    #[serde(skip)]
    idempotency: Vec<Vec<u8>>,
}

/// The archive a subject export is: a ustar file of `subject.json`, `records.csv` and
/// `audit_events.csv`.
pub struct SubjectArchive {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// One month after `ms` (same day of the next month, or its last day when that day does
/// not exist: 31 January -> 28/29 February), as EU Regulation 1182/71 counts periods.
pub fn one_month_after(ms: i64) -> i64 {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms;
    };
    let (y, m) = if t.month() == time::Month::December {
        (t.year() + 1, time::Month::January)
    } else {
        (t.year(), t.month().next())
    };
    let day = t.day().min(m.length(y));
    let Ok(date) = time::Date::from_calendar_date(y, m, day) else {
        return ms;
    };
    let next = t.replace_date(date);
    (next.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Subject {
    fn parse(email: Option<&str>, phone: Option<&str>) -> Result<Subject> {
        let email = email
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|e| validate::email("email", e).map(|e| e.into_string().to_lowercase()))
            .transpose()?;
        let phone = phone
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|p| {
                kluis_types::Phone::parse(p)
                    .map(kluis_types::Phone::into_string)
                    .map_err(|_| Error::validation("phone", "invalid_phone", "not a phone number"))
            })
            .transpose()?;
        if email.is_none() && phone.is_none() {
            return Err(Error::validation(
                "email",
                "subject_required",
                "give the subject's email address, phone number or both",
            ));
        }
        Ok(Subject { email, phone })
    }

    /// Whether a string names the subject: contains the email address (any case), or a run
    /// of phone characters in it is the subject's number.
    fn in_str(&self, s: &str) -> bool {
        if let Some(e) = &self.email
            && s.to_lowercase().contains(e.as_str())
        {
            return true;
        }
        let Some(p) = &self.phone else { return false };
        let digits_of = |x: &str| x.chars().filter(char::is_ascii_digit).collect::<String>();
        let want = digits_of(p);
        // Runs of phone characters; each one that is a phone number is compared in E.164.
        s.split(|c: char| !(c.is_ascii_digit() || " +-()./".contains(c)))
            .filter(|run| digits_of(run).len() >= 6)
            .any(|run| {
                kluis_types::Phone::parse(run.trim()).is_ok_and(|x| x.as_str() == p)
                    || digits_of(run) == want
            })
    }

    fn in_value(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => self.in_str(s),
            Value::Array(a) => a.iter().any(|x| self.in_value(x)),
            Value::Object(m) => m.iter().any(|(k, x)| self.in_str(k) || self.in_value(x)),
            _ => false,
        }
    }
}

fn view(r: &PrivacyRequestRow, subject: &Subject, now: i64) -> PrivacyRequest {
    let fulfilled = match r.kind.as_str() {
        "access" => r.exported_at.is_some() || r.erased_at.is_some(),
        _ => r.erased_at.is_some(),
    };
    PrivacyRequest {
        id: r.id,
        kind: r.kind.clone(),
        status: r.status.clone(),
        email: subject.email.clone(),
        phone: subject.phone.clone(),
        created_at: rfc3339(r.created_at),
        created_by: r.created_by.clone(),
        due_at: rfc3339(r.due_at),
        exported_at: r.exported_at.map(rfc3339),
        erased_at: r.erased_at.map(rfc3339),
        overdue: !fulfilled && now > r.due_at,
    }
}

fn open_subject(keys: &TenantKeys, r: &PrivacyRequestRow) -> Result<Subject> {
    let plain = keys.open("privacy_requests", "subject", r.id, &r.subject)?;
    serde_json::from_slice(&plain).map_err(|_| Error::internal("stored subject unreadable"))
}

fn seal_subject(keys: &TenantKeys, id: Uuid, s: &Subject) -> Result<Vec<u8>> {
    let plain = serde_json::to_vec(s).map_err(|_| Error::internal("subject encoding"))?;
    keys.seal("privacy_requests", "subject", id, &plain)
}

impl Kluis {
    /// Who may handle data-subject requests: owners and admins whose role reaches every
    /// record (the request spans the whole tenant: it reads, exports and purges anything).
    fn privacy_access(&self, actor: &Actor) -> Result<()> {
        actor.require(Permission::CrmPurge)?;
        actor.require(Permission::CrmExport)?;
        actor.require(Permission::AuditRead)
    }

    pub async fn create_privacy_request(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        input: &NewPrivacyRequest,
    ) -> Result<PrivacyRequest> {
        self.privacy_access(actor)?;
        if !matches!(input.kind.as_str(), "access" | "erasure") {
            return Err(Error::validation(
                "kind",
                "invalid_kind",
                "kind is access or erasure",
            ));
        }
        let subject = Subject::parse(input.email.as_deref(), input.phone.as_deref())?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        self.access_in(&mut tx, actor)
            .await?
            .require_every_record()?;
        let keys = self.keys(&mut tx).await?;
        let now = self.now();
        let id = Uuid::new_v4();
        let row = PrivacyRequestRow {
            id,
            kind: input.kind.clone(),
            status: "open".into(),
            subject: seal_subject(&keys, id, &subject)?,
            created_at: now,
            created_by: actor_label(actor),
            due_at: one_month_after(now),
            exported_at: None,
            erased_at: None,
        };
        tx.insert_privacy_request(&row).await?;
        // The identifiers stay out of the log: erasure would have to redact this event too.
        let ev = Event::ok("privacy.request.create", "privacy_request", id)
            .with(json!({"kind": row.kind, "due_at": rfc3339(row.due_at)}));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(view(&row, &subject, now))
    }

    pub async fn list_privacy_requests(&self, actor: &Actor) -> Result<Vec<PrivacyRequest>> {
        self.privacy_access(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let now = self.now();
        tx.privacy_requests(LIST_MAX)
            .await?
            .iter()
            .map(|r| Ok(view(r, &open_subject(&keys, r)?, now)))
            .collect()
    }

    pub async fn privacy_request(&self, actor: &Actor, id: Uuid) -> Result<PrivacyRequest> {
        self.privacy_access(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let r = tx.privacy_request(id).await?.ok_or_else(Error::not_found)?;
        Ok(view(&r, &open_subject(&keys, &r)?, self.now()))
    }

    /// Everything about the request's subject, in `tx`.
    async fn find_subject(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        r: &PrivacyRequestRow,
    ) -> Result<SubjectData> {
        let subject = open_subject(keys, r)?;
        let request = view(r, &subject, self.now());
        if subject.email.is_none() && subject.phone.is_none() {
            return Err(Error::new(
                ErrorKind::Conflict,
                "subject_erased",
                "this request's subject was erased; nothing is left to find",
            ));
        }
        let mut reason: BTreeMap<RecordId, &'static str> = BTreeMap::new();
        // 1. Blind indexes of lookup fields (trash included).
        for t in [ObjectType::Contact, ObjectType::Company] {
            for spec in t.fields().iter().filter(|s| s.lookup) {
                let (value, why) = match spec.kind {
                    fields::Kind::Email => (subject.email.as_deref(), "email"),
                    fields::Kind::Phone => (subject.phone.as_deref(), "phone"),
                    _ => (None, ""),
                };
                let Some(key) = value.and_then(|v| fields::lookup_key(spec, v)) else {
                    continue;
                };
                let bidx = keys.blind(&lookup_domain(t, spec.name), &key);
                for id in tx.lookup_any(t.as_str(), spec.name, &bidx).await? {
                    reason.entry(id).or_insert(why);
                }
            }
        }
        // 2. What is linked to a matched contact is about that person (companies are not).
        let direct: Vec<RecordId> = reason.keys().copied().collect();
        for id in direct {
            for other in tx.linked_records(id).await? {
                if let Some(row) = tx.any_record(other).await?
                    && row.object_type != "company"
                {
                    reason.entry(other).or_insert("linked");
                }
            }
        }
        // 3. Every record and version that mentions the subject.
        let mut after = None;
        loop {
            let batch = tx.record_fields_batch(after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.0);
            for (id, sealed) in &batch {
                let plain = keys.open("crm_records", "fields", record_ctx_id(*id), sealed)?;
                let v: Value = serde_json::from_slice(&plain)
                    .map_err(|_| Error::internal("stored record fields unreadable"))?;
                if subject.in_value(&v) {
                    reason.entry(*id).or_insert("mentioned");
                }
            }
        }
        let mut after = None;
        loop {
            let batch = tx.version_fields_batch(after, 500).await?;
            let Some(last) = batch.last() else { break };
            after = Some((last.0, last.1));
            for (id, rev, sealed) in &batch {
                let v = open_version(keys, *id, *rev, sealed)?;
                if subject.in_value(&Value::Object(v.fields)) {
                    reason.entry(*id).or_insert("mentioned");
                }
            }
        }
        let mut records = Vec::with_capacity(reason.len());
        for (id, why) in &reason {
            let Some(row) = tx.any_record(*id).await? else {
                continue;
            };
            let t = ObjectType::parse(&row.object_type)
                .ok_or_else(|| Error::internal("unknown object type stored"))?;
            let mut versions = Vec::new();
            for v in tx.versions(*id).await? {
                versions.push(FoundVersion {
                    revision: v.revision,
                    changed_at: rfc3339(v.changed_at),
                    fields: open_version(keys, *id, v.revision, &v.fields)?.fields,
                });
            }
            records.push(FoundRecord {
                object_type: t,
                id: *id,
                reason: (*why).to_owned(),
                in_trash: row.deleted_at.is_some(),
                revision: row.revision,
                fields: open_fields(keys, &row)?,
                versions,
            });
        }
        // 4. Audit events about a found record or mentioning the subject.
        let ids: BTreeSet<String> = records.iter().map(|r| r.id.to_string()).collect();
        let mut audit_events = Vec::new();
        let mut after = None;
        loop {
            let batch = tx
                .audit_events(after, 2000, &AuditFilter::default())
                .await?;
            let Some(last) = batch.last() else { break };
            after = Some(last.seq);
            for row in batch {
                if row.action == ERASE_ACTION {
                    continue;
                }
                let e = crate::audit::open_event(keys, row)?;
                let about = e.object_id.as_ref().is_some_and(|o| ids.contains(o));
                if about || subject.in_value(&e.details) {
                    audit_events.push(e);
                }
            }
        }
        // 5. Stored Idempotency-Key responses (a create's response holds the record).
        let mut idempotency = Vec::new();
        for (key_hash, sealed) in tx.idempotency_responses().await? {
            let Ok(hash) = <[u8; 32]>::try_from(key_hash.as_slice()) else {
                continue;
            };
            let plain = keys.open("idempotency_keys", "response", idem_ctx(&hash), &sealed)?;
            let body: Value = serde_json::from_slice(&plain).unwrap_or(Value::Null);
            let about = body["id"].as_str().is_some_and(|o| ids.contains(o));
            if about || subject.in_value(&body) {
                idempotency.push(key_hash);
            }
        }
        Ok(SubjectData {
            request,
            records,
            audit_events,
            idempotency,
        })
    }

    /// Exports everything found about the subject as one archive; the request becomes
    /// `exported` and the export is audited (with counts, not contents).
    pub async fn export_privacy_request(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<SubjectArchive> {
        self.privacy_access(actor)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        self.access_in(&mut tx, actor)
            .await?
            .require_every_record()?;
        let keys = self.keys(&mut tx).await?;
        let mut r = tx.privacy_request(id).await?.ok_or_else(Error::not_found)?;
        let data = self.find_subject(&mut tx, &keys, &r).await?;
        let now = self.now();
        r.exported_at = Some(now);
        if r.status == "open" {
            r.status = "exported".into();
        }
        tx.update_privacy_request(&r).await?;
        let ev = Event::ok("privacy.export", "privacy_request", id).with(json!({
            "records": data.records.len(),
            "audit_events": data.audit_events.len(),
        }));
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        let mut data = data;
        data.request.status = r.status.clone();
        data.request.exported_at = Some(rfc3339(now));
        Ok(SubjectArchive {
            file_name: format!("kluis-subject-{id}.tar"),
            bytes: archive(&data, now)?,
        })
    }

    /// Erases everything found about the subject (see the module text); returns the request,
    /// now `erased`, without its identifiers.
    pub async fn erase_privacy_request(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<PrivacyRequest> {
        self.privacy_access(actor)?;
        let tenant = actor.tenant();
        // Pin the leaves about to be redacted under a signature first.
        if self.audit_signing.is_some() {
            self.checkpoint_log(tenant).await?;
        }
        let mut tx = self.store.tenant(tenant).begin().await?;
        self.access_in(&mut tx, actor)
            .await?
            .require_every_record()?;
        let keys = self.keys(&mut tx).await?;
        let mut r = tx.privacy_request(id).await?.ok_or_else(Error::not_found)?;
        if r.kind != "erasure" {
            return Err(Error::new(
                ErrorKind::Conflict,
                "not_erasure",
                "this is an access request; create an erasure request to erase",
            ));
        }
        let data = self.find_subject(&mut tx, &keys, &r).await?;
        let label = actor_label(actor);
        let mut blobs = Vec::new();
        for rec in &data.records {
            tx.purge_record(rec.id).await?;
            blobs.extend(self.purge_record_files(&mut tx, rec.id).await?);
            // Per record, so the search indexes (fed by the log) drop it too.
            let ev = event(
                rec.object_type,
                "purge",
                rec.id,
                json!({"reason": "privacy_request", "request": id}),
            );
            self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        }
        for key_hash in &data.idempotency {
            tx.delete_idempotency(key_hash).await?;
        }
        let redacted: Vec<i64> = data.audit_events.iter().map(|e| e.seq).collect();
        let ev = Event::ok(ERASE_ACTION, "privacy_request", id).with(json!({
            "records": data.records.iter().map(|r| r.id).collect::<Vec<_>>(),
            "redacted": redacted,
            "files": blobs.len(),
        }));
        self.audit(&mut tx, &keys, &label, ctx, ev).await?;
        let by = tx.audit_size().await? - 1;
        for seq in &redacted {
            let plain = serde_json::to_vec(&Redacted { redacted_by: by })
                .map_err(|_| Error::internal("audit encoding"))?;
            let sealed = keys.seal(
                "audit_events",
                "details",
                Uuid::from_u64_pair(0, *seq as u64),
                &plain,
            )?;
            tx.redact_audit_event(*seq, by, &sealed).await?;
        }
        let now = self.now();
        // Other requests about the same person keep no identifiers either.
        let subject = open_subject(&keys, &r)?;
        for mut other in tx.privacy_requests(i64::MAX).await? {
            if other.id == id {
                continue;
            }
            let s = open_subject(&keys, &other)?;
            let same = (s.email.is_some() && s.email == subject.email)
                || (s.phone.is_some() && s.phone == subject.phone);
            if same {
                other.subject = seal_subject(&keys, other.id, &Subject::default())?;
                tx.update_privacy_request(&other).await?;
            }
        }
        r.status = "erased".into();
        r.erased_at = Some(now);
        r.subject = seal_subject(&keys, id, &Subject::default())?;
        tx.update_privacy_request(&r).await?;
        tx.commit().await?;
        crate::files::remove_blobs(blobs).await;
        self.checkpoint_soon(tenant);
        Ok(view(&r, &Subject::default(), now))
    }
}

/// subject.json (everything), records.csv (one row per field of each record and version) and
/// audit_events.csv, in one ustar archive.
fn archive(data: &SubjectData, now: i64) -> Result<Vec<u8>> {
    let json = serde_json::to_vec_pretty(data).map_err(|_| Error::internal("export encoding"))?;
    let csv_err = |_| Error::internal("export encoding");
    let mut records = csv::Writer::from_writer(Vec::new());
    records
        .write_record([
            "object_type",
            "id",
            "reason",
            "in_trash",
            "revision",
            "current",
            "field",
            "value",
        ])
        .map_err(csv_err)?;
    for r in &data.records {
        let current = std::iter::once((r.revision, true, &r.fields));
        let older = r.versions.iter().map(|v| (v.revision, false, &v.fields));
        for (rev, is_current, fields) in current.chain(older) {
            for (k, v) in fields {
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                records
                    .write_record([
                        r.object_type.as_str(),
                        &r.id.to_string(),
                        &r.reason,
                        &r.in_trash.to_string(),
                        &rev.to_string(),
                        &is_current.to_string(),
                        k,
                        &value,
                    ])
                    .map_err(csv_err)?;
            }
        }
    }
    let mut events = csv::Writer::from_writer(Vec::new());
    events
        .write_record([
            "seq",
            "at",
            "actor",
            "action",
            "outcome",
            "object_type",
            "object_id",
            "details",
        ])
        .map_err(csv_err)?;
    for e in &data.audit_events {
        events
            .write_record([
                &e.seq.to_string(),
                &e.at,
                &e.actor,
                &e.action,
                &e.outcome,
                e.object_type.as_deref().unwrap_or(""),
                e.object_id.as_deref().unwrap_or(""),
                &e.details.to_string(),
            ])
            .map_err(csv_err)?;
    }
    let records = records
        .into_inner()
        .map_err(|_| Error::internal("export"))?;
    let events = events.into_inner().map_err(|_| Error::internal("export"))?;
    let mut out = Vec::new();
    let mtime = u64::try_from(now / 1000).unwrap_or(0);
    for (name, body) in [
        ("subject.json", &json),
        ("records.csv", &records),
        ("audit_events.csv", &events),
    ] {
        tar_entry(&mut out, name, body, mtime);
    }
    out.extend_from_slice(&[0u8; 1024]); // two zero blocks end the archive
    Ok(out)
}

/// Appends one regular file to a POSIX ustar archive (names here are short and ASCII).
fn tar_entry(out: &mut Vec<u8>, name: &str, body: &[u8], mtime: u64) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o600);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, body.len() as u64);
    octal(&mut h, 136, 12, mtime);
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    let pad = (512 - body.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    #[test]
    fn one_month_is_the_same_day_next_month_or_its_last_day() {
        for (from, to) in [
            ("2026-03-15T10:00:00Z", "2026-04-15T10:00:00Z"),
            ("2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z"),
            ("2028-01-31T09:00:00Z", "2028-02-29T09:00:00Z"),
            ("2026-12-20T23:30:00Z", "2027-01-20T23:30:00Z"),
            ("2026-05-31T00:00:00Z", "2026-06-30T00:00:00Z"),
        ] {
            assert_eq!(one_month_after(ms(from)), ms(to), "{from}");
        }
    }

    #[test]
    fn a_subject_is_found_by_email_in_any_case_and_by_phone_in_any_notation() {
        let s = Subject::parse(Some("Jan.Jansen@Example.nl"), Some("+31 6 12345678")).unwrap();
        assert!(s.in_str("mail JAN.JANSEN@example.NL please"));
        assert!(s.in_str("bel 06-12345678 terug"));
        assert!(s.in_str("+31612345678"));
        assert!(!s.in_str("jan@example.nl"));
        assert!(!s.in_str("06-12345679"));
        assert!(s.in_value(&json!({"changed": {"email": [null, "jan.jansen@example.nl"]}})));
        assert!(Subject::parse(None, Some(" ")).is_err());
    }

    #[test]
    fn the_archive_is_a_ustar_file_tar_reads() {
        let mut out = Vec::new();
        tar_entry(&mut out, "a.txt", b"hello", 1_700_000_000);
        out.extend_from_slice(&[0u8; 1024]);
        let dir = std::env::temp_dir().join(format!("kluis-tar-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.tar");
        std::fs::write(&file, &out).unwrap();
        let ok = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&file)
            .arg("-C")
            .arg(&dir)
            .status();
        match ok {
            Ok(st) => {
                assert!(st.success());
                assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), b"hello");
            }
            Err(e) => eprintln!("skipped: no tar binary ({e})"),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
