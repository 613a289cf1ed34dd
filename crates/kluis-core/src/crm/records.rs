//! Writing records: create (one write path for a single create and for imports), read one,
//! update against a revision, delete to the trash.

use super::*;

/// The state a change writes.
pub(super) struct NextState {
    pub(super) fields: Map<String, Value>,
    pub(super) owner: Option<UserId>,
    pub(super) company: Option<RecordId>,
    pub(super) deal: DealCols,
    pub(super) task: TaskCols,
    /// Replaces a deal's contacts / a note's or task's related records when set.
    pub(super) contacts: Option<Vec<RecordId>>,
    /// Flagged kinds of sensitive data.
    pub(super) sensitive: Option<String>,
    /// Blind-index entries of `fields`.
    pub(super) lookups: Vec<(String, [u8; 32])>,
    /// Replaces the record's tags when set.
    pub(super) tags: Option<Vec<TagId>>,
}

/// A create, checked and sealed, ready to be written alone or with others.
pub(super) struct PreparedCreate {
    pub id: RecordId,
    pub(super) owner: Option<UserId>,
    pub(super) company: Option<RecordId>,
    pub(super) sealed: Vec<u8>,
    pub(super) deal: DealCols,
    pub(super) task: TaskCols,
    pub(super) sensitive: Option<String>,
    /// Blind-index entries (the duplicate check of a batch reads them).
    pub lookups: Vec<(String, [u8; 32])>,
    pub(super) related: Option<Vec<RecordId>>,
    pub(super) tags: Option<Vec<TagId>>,
    pub(super) details: Value,
    /// The fields as sealed: the answer to a create is built from them, not read back.
    pub(super) fields: Map<String, Value>,
}

/// What a caller has verified already, so that many creates need not read it again.
#[derive(Default)]
pub(super) struct Checked {
    /// Active users of the tenant.
    pub owners: std::collections::HashSet<UserId>,
    /// Live companies.
    pub companies: std::collections::HashSet<RecordId>,
    /// Live tags.
    pub tags: std::collections::HashSet<TagId>,
    /// The sensitive-data mode (`block`?), once read.
    pub guard_block: Option<bool>,
    /// The caller checks duplicates itself (for a whole batch at once).
    pub duplicates: bool,
}

impl Kluis {
    /// An active user of the tenant, for `owner_id`.
    pub(super) async fn check_owner(&self, tx: &mut TenantTx, owner: Option<UserId>) -> Result<()> {
        if let Some(id) = owner {
            let ok = tx.user(id).await?.is_some_and(|u| u.status.is_active());
            if !ok {
                return Err(Error::validation(
                    "owner_id",
                    "unknown_user",
                    "no active user with this id in your organisation",
                ));
            }
        }
        Ok(())
    }

    pub(super) async fn check_company(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        company: Option<RecordId>,
    ) -> Result<()> {
        let Some(id) = company else { return Ok(()) };
        if t != ObjectType::Contact {
            return Err(Error::validation(
                "company_id",
                "not_applicable",
                "only contacts belong to a company",
            ));
        }
        let live = tx
            .record(ObjectType::Company.as_str(), id)
            .await?
            .is_some_and(|c| c.deleted_at.is_none());
        if !live {
            return Err(Error::validation(
                "company_id",
                "unknown_company",
                "no company with this id in your organisation",
            ));
        }
        Ok(())
    }

    /// Refuses a second live record with the same dedupe value (email of contacts, domain of
    /// companies).
    /// `entries` are the record's blind-index entries ([`lookups`]), computed once by the caller
    /// and written afterwards.
    pub(super) async fn check_duplicate(
        &self,
        tx: &mut TenantTx,
        schema: &Schema,
        id: RecordId,
        entries: &[(String, [u8; 32])],
    ) -> Result<()> {
        let t = schema.t;
        let unique = schema.unique_fields();
        for (field, bidx) in entries {
            if !unique.contains(field) {
                continue;
            }
            let existing = tx.lookup_live(t.as_str(), field, bidx).await?;
            if let Some(other) = existing.into_iter().find(|o| *o != id) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "duplicate",
                    format!("a {} with this {field} already exists: {other}", t.as_str()),
                )
                .with_field(format!("fields.{field}")));
            }
        }
        Ok(())
    }

    pub async fn create_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        input: RecordInput,
        idem: Option<&Idempotency>,
    ) -> Result<Record> {
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let vis = access.require(t, Right::Create)?;
        let fv = access.fields(t);
        owner_in_scope(&vis, input.owner_id.unwrap_or(actor.user_id()))?;
        fv.check_write(&input.fields, None)?;
        let keys = self.keys(&mut tx).await?;
        let idem_hash = match idem {
            Some(i) => Some((
                i.key_hash(&format!("{label}\n{}", t.as_str())),
                request_hash(t, &input)?,
            )),
            None => None,
        };
        if let Some((key_hash, request)) = &idem_hash
            && let Some(mut done) = self.replay(&mut tx, &keys, key_hash, request).await?
        {
            fv.redact(&mut done.fields);
            return Ok(done);
        }
        let id = RecordId::new();
        let schema = self.schema(&mut tx, t).await?;
        let rec = self
            .create_in(&mut tx, &keys, &schema, actor, ctx, id, &input, None)
            .await?;
        let now = self.now();
        let mut sealed_n = 0;
        if let Some((key_hash, request)) = &idem_hash {
            let body = serde_json::to_vec(&rec).map_err(|_| Error::internal("encoding"))?;
            let sealed = keys.seal("idempotency_keys", "response", idem_ctx(key_hash), &body)?;
            tx.insert_idempotency(key_hash, request, 201, &sealed, now)
                .await?;
            sealed_n += 1;
        }
        if sealed_n > 0 {
            self.count_sealed(&mut tx, &keys, sealed_n).await?;
        }
        tx.commit().await?;
        let mut rec = rec;
        fv.redact(&mut rec.fields);
        Ok(rec)
    }

    /// Everything a create writes (record, lookups, links, tags, audit event), inside `tx`, and
    /// the record as the API shows it, built from what was prepared (nothing is read back or
    /// decrypted). `import` names the import the record came from, for its audit event.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_in(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
        input: &RecordInput,
        import: Option<Uuid>,
    ) -> Result<Record> {
        let mut checked = Checked::default();
        let mut rec = self
            .prepare_create(tx, keys, schema, actor, id, input, import, &mut checked)
            .await?;
        let now = self.now();
        let answer = self
            .created_record(tx, schema.t, &mut rec, now, &actor_label(actor))
            .await?;
        self.write_creates(tx, keys, actor, ctx, schema.t, vec![rec], now)
            .await?;
        Ok(answer)
    }

    /// What `load` would return right after the create, from the prepared state: the same
    /// order of links (by id) and tags (by id) as the store returns them.
    pub(super) async fn created_record(
        &self,
        tx: &mut TenantTx,
        t: ObjectType,
        p: &mut PreparedCreate,
        at: i64,
        by: &str,
    ) -> Result<Record> {
        let staged = matches!(t, ObjectType::Deal | ObjectType::Ticket);
        let outcome = match (staged, p.deal.stage_id) {
            (true, Some(stage)) => self
                .stages_of(tx, t)
                .await?
                .into_iter()
                .find(|s| s.id == stage)
                .map(|s| s.outcome),
            _ => None,
        };
        let mut links = p.related.clone().unwrap_or_default();
        links.sort_by_key(|id| id.0);
        links.dedup();
        let mut tag_ids = p.tags.clone().unwrap_or_default();
        tag_ids.sort_by_key(|id| id.0);
        let linked = matches!(t, ObjectType::Note | ObjectType::Task);
        Ok(Record {
            id: p.id,
            object_type: t,
            revision: 1,
            owner_id: p.owner,
            company_id: p.company,
            fields: std::mem::take(&mut p.fields),
            created_at: rfc3339(at),
            updated_at: rfc3339(at),
            created_by: by.to_owned(),
            updated_by: by.to_owned(),
            deleted_at: None,
            deleted_by: None,
            deal: staged.then(|| p.deal.clone()),
            outcome,
            contact_ids: staged.then(|| links.clone()),
            related_ids: linked.then_some(links),
            task: (t == ObjectType::Task).then(|| deals::TaskView::from(&p.task)),
            tag_ids,
            sensitive: guard::parse_flags(p.sensitive.as_deref()),
        })
    }

    /// Checks and seals a create without writing it. `checked` carries what the caller has
    /// verified already (an import checks owners, companies, tags and duplicates once for many
    /// rows); what it does not carry is checked here.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn prepare_create(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        id: RecordId,
        input: &RecordInput,
        import: Option<Uuid>,
        checked: &mut Checked,
    ) -> Result<PreparedCreate> {
        let t = schema.t;
        let f = fields::apply(schema, &Map::new(), &input.fields)?;
        t.check_required(&f)?;
        fields::check_custom_required(schema, &f)?;
        let owner = input.owner_id.unwrap_or(actor.user_id());
        if let Some(o) = owner
            && !checked.owners.contains(&o)
        {
            self.check_owner(tx, owner).await?;
            checked.owners.insert(o);
        }
        let company = input.company_id.flatten();
        if company.is_none_or(|c| !checked.companies.contains(&c)) {
            self.check_company(tx, t, company).await?;
        }
        // One HMAC pass: the duplicate check and the write use the same entries.
        let entries = lookups(keys, schema, &f);
        if !checked.duplicates {
            self.check_duplicate(tx, schema, id, &entries).await?;
        }
        let deal = self.resolve_deal(tx, t, None, input).await?;
        let task = deals::resolve_task(t, None, input, self.now())?;
        let related = self.resolve_related(tx, t, input).await?;
        let tags = match &input.tag_ids {
            Some(ids) if ids.len() <= 100 && ids.iter().all(|i| checked.tags.contains(i)) => {
                let mut out: Vec<TagId> = Vec::new();
                for i in ids {
                    if !out.contains(i) {
                        out.push(*i);
                    }
                }
                Some(out)
            }
            Some(ids) => Some(self.check_tags(tx, ids).await?),
            None => None,
        };
        let block = match checked.guard_block {
            Some(b) => b,
            None => {
                let b = guard::mode(tx).await? == "block";
                checked.guard_block = Some(b);
                b
            }
        };
        let sensitive = guard::scan_fields(block, &f, f.keys())?;
        let plain = serde_json::to_vec(&f).map_err(|_| Error::internal("record encoding"))?;
        let sealed = keys.seal("crm_records", "fields", record_ctx_id(id), &plain)?;
        // The state this create leaves (computed here: an import writes many at once).
        let state = crate::state::record_digest(keys, id.0, 1, false, &plain);
        let changed = fields::changes(&Map::new(), &f);
        let mut details = json!({"changed": changed, "owner_id": owner, "company_id": company, "state": hex::encode(state)});
        match t {
            ObjectType::Deal | ObjectType::Ticket => details["deal"] = json!(deal),
            ObjectType::Task => details["task"] = json!(task),
            _ => {}
        }
        if related.is_some() {
            details["related_ids"] = json!(related);
        }
        if let Some(tags) = &tags {
            details["tag_ids"] = json!(tags);
        }
        if let Some(import) = import {
            details["import"] = json!(import);
        }
        Ok(PreparedCreate {
            id,
            owner,
            company,
            sealed,
            deal,
            task,
            sensitive,
            lookups: entries,
            related,
            tags,
            details,
            fields: f,
        })
    }

    /// Writes prepared creates of type `t`: records, lookups, links and tags, and one audit
    /// event each. Many records go in a few multi-row statements.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_creates(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        recs: Vec<PreparedCreate>,
        now: i64,
    ) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let label = actor_label(actor);
        let writes: Vec<RecordWrite<'_>> = recs
            .iter()
            .map(|r| RecordWrite {
                id: r.id,
                object_type: t.as_str(),
                owner_id: r.owner,
                company_id: r.company,
                revision: 1,
                fields: &r.sealed,
                at: now,
                by: &label,
                deal: &r.deal,
                task: &r.task,
                sensitive: r.sensitive.as_deref(),
            })
            .collect();
        match writes.as_slice() {
            [one] => tx.insert_record(one).await?,
            many => tx.insert_records(many).await?,
        }
        drop(writes);
        // New ids have no entries to replace: one insert, no delete first.
        let entries: Vec<(RecordId, &str, &[u8])> = recs
            .iter()
            .flat_map(|r| {
                r.lookups
                    .iter()
                    .map(move |(f, b)| (r.id, f.as_str(), b.as_slice()))
            })
            .collect();
        if !entries.is_empty() {
            tx.insert_lookups(t.as_str(), &entries).await?;
        }
        drop(entries);
        for r in &recs {
            if let Some(others) = &r.related {
                tx.set_associations(r.id, others).await?;
            }
            if let Some(tags) = &r.tags {
                tx.set_record_tags(r.id, tags).await?;
            }
        }
        let n = recs.len() as i64;
        let events = recs
            .into_iter()
            .map(|r| event(t, "create", r.id, r.details))
            .collect();
        self.audit_many(tx, keys, &label, ctx, events).await?;
        self.count_sealed(tx, keys, n).await
    }

    /// A record as the API shows it, read inside `tx` (live or in the trash).
    pub(super) async fn load(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        t: ObjectType,
        id: RecordId,
    ) -> Result<Record> {
        let row = tx
            .record(t.as_str(), id)
            .await?
            .ok_or_else(Error::not_found)?;
        let mut recs = [to_record(keys, row)?];
        self.enrich(tx, &mut recs).await?;
        let [rec] = recs;
        Ok(rec)
    }

    pub async fn get_record(&self, actor: &Actor, t: ObjectType, id: RecordId) -> Result<Record> {
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let vis = access.require(t, Right::Read)?;
        let keys = self.keys(&mut tx).await?;
        live_in(&mut tx, &vis, t, id).await?;
        let mut rec = self.load(&mut tx, &keys, t, id).await?;
        access.fields(t).redact(&mut rec.fields);
        Ok(rec)
    }

    pub async fn update_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        if_match: &IfMatch,
        input: RecordInput,
    ) -> Result<Record> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let vis = access.require(t, Right::Update)?;
        let fv = access.fields(t);
        let keys = self.keys(&mut tx).await?;
        let row = live_in(&mut tx, &vis, t, id).await?;
        if_match.check(row.revision, true)?;
        owner_in_scope(&vis, input.owner_id.unwrap_or(row.owner_id))?;
        if !fv.is_empty() {
            fv.check_write(&input.fields, Some(&open_fields(&keys, &row)?))?;
        }
        let schema = self.schema(&mut tx, t).await?;
        self.update_in(&mut tx, &keys, &schema, actor, ctx, &row, &input, None)
            .await?;
        let mut rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        fv.redact(&mut rec.fields);
        Ok(rec)
    }

    /// Everything an update of `row` writes (version, record, lookups, links, tags, audit
    /// event), inside `tx`. `import` names the import the change came from.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn update_in(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        schema: &Schema,
        actor: &Actor,
        ctx: &RequestContext,
        row: &CrmRecordRow,
        input: &RecordInput,
        import: Option<Uuid>,
    ) -> Result<bool> {
        let t = schema.t;
        let id = row.id;
        let current = open_fields(keys, row)?;
        let f = fields::apply(schema, &current, &input.fields)?;
        t.check_required(&f)?;
        fields::check_custom_required(schema, &f)?;
        let owner = input.owner_id.unwrap_or(row.owner_id);
        let company = input.company_id.unwrap_or(row.company_id);
        if owner != row.owner_id {
            self.check_owner(tx, owner).await?;
        }
        if company != row.company_id {
            self.check_company(tx, t, company).await?;
        }
        let entries = lookups(keys, schema, &f);
        self.check_duplicate(tx, schema, id, &entries).await?;
        let deal = self.resolve_deal(tx, t, Some(&row.deal), input).await?;
        let task = deals::resolve_task(t, Some(&row.task), input, self.now())?;
        let related = self.resolve_related(tx, t, input).await?;
        let tags = match &input.tag_ids {
            Some(ids) => Some(self.check_tags(tx, ids).await?),
            None => None,
        };
        let changed = fields::changes(&current, &f);
        // An import row that repeats what the record holds (a file exported, edited elsewhere
        // and imported again) writes nothing: no new revision, no event. An explicit PATCH
        // still records itself.
        if import.is_some()
            && changed.is_empty()
            && owner == row.owner_id
            && company == row.company_id
            && deal == row.deal
            && task == row.task
        {
            let links_same = match &related {
                None => true,
                Some(given) => same_set(
                    given.iter().map(|r| r.0).collect(),
                    tx.associations(id)
                        .await?
                        .into_iter()
                        .map(|r| r.0)
                        .collect(),
                ),
            };
            let tags_same = match &tags {
                None => true,
                Some(given) => same_set(
                    given.iter().map(|t| t.0).collect(),
                    tx.record_tags(&[id])
                        .await?
                        .into_iter()
                        .map(|(_, t)| t.0)
                        .collect(),
                ),
            };
            if links_same && tags_same {
                return Ok(false);
            }
        }
        let sensitive = self.guard(tx, &f, changed.keys()).await?;
        let mut details = json!({"changed": changed, "revision": row.revision + 1});
        if owner != row.owner_id {
            details["owner_id"] = json!({"old": row.owner_id, "new": owner});
        }
        if company != row.company_id {
            details["company_id"] = json!({"old": row.company_id, "new": company});
        }
        if deal != row.deal {
            details["deal"] = json!(deals::deal_changes(&row.deal, &deal));
        }
        if task != row.task {
            details["task"] = json!(deals::cols_changes(&row.task, &task));
        }
        if let Some(others) = &related {
            details["related_ids"] = json!(others);
        }
        if let Some(tags) = &tags {
            details["tag_ids"] = json!(tags);
        }
        if let Some(import) = import {
            details["import"] = json!(import);
        }
        let next = NextState {
            lookups: entries,
            fields: f,
            owner,
            company,
            deal,
            task,
            contacts: related,
            sensitive,
            tags,
        };
        self.write_revision(
            tx, keys, actor, ctx, t, row, current, next, "update", details,
        )
        .await?;
        Ok(true)
    }

    /// Keeps `row`'s state as a version and writes the next revision, with its event.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn write_revision(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        row: &CrmRecordRow,
        previous: Map<String, Value>,
        next: NextState,
        verb: &str,
        details: Value,
    ) -> Result<()> {
        let label = actor_label(actor);
        let now = self.now();
        let stored = StoredVersion {
            revision: row.revision,
            fields: previous,
            owner_id: row.owner_id,
            company_id: row.company_id,
            deal: row.deal.clone(),
            task: row.task.clone(),
        };
        let plain = serde_json::to_vec(&stored).map_err(|_| Error::internal("version encoding"))?;
        let sealed_version = keys.seal("crm_versions", "fields", record_ctx_id(row.id), &plain)?;
        let mut details = details;
        details["version"] = json!({
            "revision": row.revision,
            "state": hex::encode(crate::state::version_digest(keys, row.id.0, row.revision, &plain)),
        });
        tx.insert_version(
            row.id,
            row.revision,
            &sealed_version,
            row.updated_at,
            &row.updated_by,
        )
        .await?;
        let next_plain =
            serde_json::to_vec(&next.fields).map_err(|_| Error::internal("record encoding"))?;
        let sealed = keys.seal("crm_records", "fields", record_ctx_id(row.id), &next_plain)?;
        details["state"] = json!(hex::encode(crate::state::record_digest(
            keys,
            row.id.0,
            row.revision + 1,
            false,
            &next_plain
        )));
        let updated = tx
            .update_record(
                row.revision,
                &RecordWrite {
                    id: row.id,
                    object_type: t.as_str(),
                    owner_id: next.owner,
                    company_id: next.company,
                    revision: row.revision + 1,
                    fields: &sealed,
                    at: now,
                    by: &label,
                    deal: &next.deal,
                    task: &next.task,
                    sensitive: next.sensitive.as_deref(),
                },
            )
            .await?;
        if !updated {
            return Err(stale());
        }
        tx.set_lookups(t.as_str(), row.id, &next.lookups).await?;
        if let Some(contacts) = &next.contacts {
            tx.set_associations(row.id, contacts).await?;
        }
        if let Some(tags) = &next.tags {
            tx.set_record_tags(row.id, tags).await?;
        }
        self.audit(tx, keys, &label, ctx, event(t, verb, row.id, details))
            .await?;
        self.count_sealed(tx, keys, 2).await
    }

    /// Moves a record to the trash (restorable until the trash retention purges it).
    pub async fn delete_record(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        if_match: &IfMatch,
    ) -> Result<()> {
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let vis = self
            .access_in(&mut tx, actor)
            .await?
            .require(t, Right::Delete)?;
        let keys = self.keys(&mut tx).await?;
        let row = live_in(&mut tx, &vis, t, id).await?;
        if_match.check(row.revision, false)?;
        if !tx
            .set_record_deleted(id, Some((self.now(), &label)))
            .await?
        {
            return Err(stale());
        }
        self.audit(
            &mut tx,
            &keys,
            &label,
            ctx,
            event(t, "delete", id, json!({"revision": row.revision})),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Kluis {
    /// Reveals one masked field of one record, to a role that shows it masked and may unmask
    /// it. An audited act: the event names the field, never its value.
    pub async fn unmask_field(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
        input: UnmaskInput,
    ) -> Result<Unmasked> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let row = tx
            .any_record(id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(Error::not_found)?;
        let t = ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        let vis = access.require(t, Right::Read)?;
        if !vis.shows(row.owner_id) {
            return Err(Error::not_found());
        }
        if access.fields(t).rule(&input.field) != Some(crate::authz::FieldRule::Masked) {
            return Err(Error::validation(
                "field",
                "not_masked",
                "your role does not show this field masked",
            ));
        }
        access.require(t, Right::Unmask)?;
        let keys = self.keys(&mut tx).await?;
        let value = open_fields(&keys, &row)?
            .remove(&input.field)
            .unwrap_or(Value::Null);
        self.audit(
            &mut tx,
            &keys,
            &actor_label(actor),
            ctx,
            event(t, "unmask", id, json!({"field": input.field})),
        )
        .await?;
        tx.commit().await?;
        Ok(Unmasked {
            field: input.field,
            value,
        })
    }
}

pub(super) async fn live(tx: &mut TenantTx, t: ObjectType, id: RecordId) -> Result<CrmRecordRow> {
    tx.record(t.as_str(), id)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(Error::not_found)
}

/// A live record within the reader's record scope; one outside it is "not found", exactly
/// like a record that does not exist, so scope does not reveal what exists.
pub(super) async fn live_in(
    tx: &mut TenantTx,
    vis: &Visibility,
    t: ObjectType,
    id: RecordId,
) -> Result<CrmRecordRow> {
    let row = live(tx, t, id).await?;
    if !vis.shows(row.owner_id) {
        return Err(Error::not_found());
    }
    Ok(row)
}

/// A record may only be given an owner within the writer's own scope (else it would vanish
/// from their reach, or be planted in someone else's).
pub(super) fn owner_in_scope(vis: &Visibility, owner: Option<UserId>) -> Result<()> {
    if vis.shows(owner) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Forbidden,
            "owner_out_of_scope",
            "your role reaches only records you (or your team) own; set owner_id accordingly",
        ))
    }
}

/// Whether two id lists hold the same ids (order and repeats aside).
fn same_set(mut a: Vec<Uuid>, mut b: Vec<Uuid>) -> bool {
    a.sort_unstable();
    a.dedup();
    b.sort_unstable();
    b.dedup();
    a == b
}
