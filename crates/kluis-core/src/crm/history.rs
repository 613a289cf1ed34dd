//! A record's past: its versions (restore one) and the trash (restore, purge, expiry).

use super::*;

impl Kluis {
    /// Every version of a record, newest (current) first.
    pub async fn record_versions(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
    ) -> Result<Vec<RecordVersion>> {
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let vis = access.require(t, Right::Read)?;
        let fv = access.fields(t);
        let keys = self.keys(&mut tx).await?;
        let row = live_in(&mut tx, &vis, t, id).await?;
        let is_deal = matches!(t, ObjectType::Deal | ObjectType::Ticket);
        let mut out = vec![RecordVersion {
            revision: row.revision,
            fields: open_fields(&keys, &row)?,
            deal: is_deal.then(|| row.deal.clone()),
            changed_at: rfc3339(row.updated_at),
            changed_by: row.updated_by.clone(),
            current: true,
        }];
        for v in tx.versions(id).await? {
            let s = open_version(&keys, id, v.revision, &v.fields)?;
            out.push(RecordVersion {
                revision: v.revision,
                fields: s.fields,
                deal: is_deal.then_some(s.deal),
                changed_at: rfc3339(v.changed_at),
                changed_by: v.changed_by,
                current: false,
            });
        }
        drop(tx);
        for v in &mut out {
            fv.redact(&mut v.fields);
        }
        self.audit_read(actor, ctx, t, "versions", out.len())
            .await?;
        Ok(out)
    }

    /// Makes an earlier version's values current again (as a new revision; the versions in
    /// between are kept): its fields and, for deals, pipeline, stage, amount and close date.
    /// Owner, company and a deal's contacts stay as they are now.
    pub async fn restore_record_version(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        id: RecordId,
        revision: i64,
        if_match: &IfMatch,
    ) -> Result<Record> {
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let vis = access.require(t, Right::Update)?;
        if !access.fields(t).is_empty() {
            // A restore rewrites every field, those this role may not write included.
            return Err(Error::new(
                ErrorKind::Forbidden,
                "field_read_only",
                "your role may not change some fields of this record, so it cannot restore a version",
            ));
        }
        let keys = self.keys(&mut tx).await?;
        let row = live_in(&mut tx, &vis, t, id).await?;
        if_match.check(row.revision, true)?;
        let v = tx
            .versions(id)
            .await?
            .into_iter()
            .find(|v| v.revision == revision)
            .ok_or_else(Error::not_found)?;
        let old = open_version(&keys, id, revision, &v.fields)?;
        let current = open_fields(&keys, &row)?;
        let schema = self.schema(&mut tx, t).await?;
        let entries = lookups(&keys, &schema, &old.fields);
        self.check_duplicate(&mut tx, &schema, id, &entries).await?;
        if matches!(t, ObjectType::Deal | ObjectType::Ticket) {
            // The old stage must still exist (stages in use cannot be removed, but a stage that
            // was emptied may have been).
            let stages = self.stages_of(&mut tx, t).await?;
            if !stages.iter().any(|s| Some(s.id) == old.deal.stage_id) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "stage_gone",
                    "the stage of that version no longer exists",
                ));
            }
        }
        let changed = fields::changes(&current, &old.fields);
        let sensitive = self.guard(&mut tx, &old.fields, changed.keys()).await?;
        let mut details = json!({"changed": changed, "restored_revision": revision, "revision": row.revision + 1});
        if old.deal != row.deal {
            details["deal"] = json!(deals::deal_changes(&row.deal, &old.deal));
        }
        if old.task != row.task {
            details["task"] = json!(deals::cols_changes(&row.task, &old.task));
        }
        let next = NextState {
            lookups: entries,
            fields: old.fields,
            owner: row.owner_id,
            company: row.company_id,
            deal: old.deal,
            task: old.task,
            contacts: None,
            sensitive,
            tags: None,
        };
        self.write_revision(
            &mut tx,
            &keys,
            actor,
            ctx,
            t,
            &row,
            current,
            next,
            "restore_version",
            details,
        )
        .await?;
        let rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The trash: deleted records of every type (or one), most recently deleted last.
    pub async fn list_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: Option<ObjectType>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Record>> {
        actor.require(Permission::CrmRead)?;
        let mut after = validate::cursor::<RecordId>(cursor)?;
        let limit = page_limit(limit)?;
        let mut tx = self.store.tenant(actor.tenant()).begin_read().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let keys = self.keys(&mut tx).await?;
        let scope = match t {
            Some(t) => access.require(t, Right::Read)?.store_scope(),
            None => Default::default(),
        };
        let filter = RecordFilter {
            object_type: t.map(|t| t.as_str().to_owned()),
            deleted: true,
            scope,
            ..Default::default()
        };
        // Across types each row is held to its own type's right and scope; pages of rows
        // are read until enough are in reach (or the trash ends).
        let mut rows = Vec::new();
        loop {
            let batch = tx.list_records(&filter, after, limit + 1).await?;
            let end = (batch.len() as i64) <= limit;
            after = batch.last().map(|r| r.id);
            rows.extend(batch.into_iter().filter(|r| {
                ObjectType::parse(&r.object_type).is_some_and(|t| {
                    access.can(t, Right::Read) && access.visibility(t).shows(r.owner_id)
                })
            }));
            if end || rows.len() as i64 > limit {
                break;
            }
        }
        let mut page = crate::users::page(
            rows,
            limit,
            |r| to_record(&keys, r),
            |r: &Record| r.id.to_string(),
        )?;
        self.enrich(&mut tx, &mut page.items).await?;
        drop(tx);
        for r in &mut page.items {
            access.fields(r.object_type).redact(&mut r.fields);
        }
        for t in ObjectType::ALL {
            let n = page.items.iter().filter(|r| r.object_type == t).count();
            if n > 0 {
                self.audit_read(actor, ctx, t, "list", n).await?;
            }
        }
        Ok(page)
    }

    /// Takes a record out of the trash.
    pub async fn restore_from_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
    ) -> Result<Record> {
        let label = actor_label(actor);
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let keys = self.keys(&mut tx).await?;
        let row = trashed_in(&mut tx, &access, id).await?;
        let t = ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        access.require(t, Right::Delete)?;
        let f = open_fields(&keys, &row)?;
        let schema = self.schema(&mut tx, t).await?;
        self.check_duplicate(&mut tx, &schema, id, &lookups(&keys, &schema, &f))
            .await?;
        tx.set_record_deleted(id, None).await?;
        self.audit(
            &mut tx,
            &keys,
            &label,
            ctx,
            event(t, "restore", id, json!({})),
        )
        .await?;
        let mut rec = self.load(&mut tx, &keys, t, id).await?;
        tx.commit().await?;
        access.fields(t).redact(&mut rec.fields);
        Ok(rec)
    }

    /// Deletes a trashed record for good (a separate, privileged permission).
    pub async fn purge_from_trash(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        id: RecordId,
    ) -> Result<()> {
        actor.require(Permission::CrmPurge)?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let access = self.access_in(&mut tx, actor).await?;
        let keys = self.keys(&mut tx).await?;
        let row = trashed_in(&mut tx, &access, id).await?;
        let t = ObjectType::parse(&row.object_type).ok_or_else(Error::not_found)?;
        access.require(t, Right::Delete)?;
        tx.purge_record(id).await?;
        let blobs = self.purge_record_files(&mut tx, id).await?;
        self.audit(
            &mut tx,
            &keys,
            &actor_label(actor),
            ctx,
            event(
                t,
                "purge",
                id,
                json!({"reason": "requested", "files": blobs.len()}),
            ),
        )
        .await?;
        tx.commit().await?;
        crate::files::remove_blobs(blobs).await;
        Ok(())
    }

    /// The retention job: purges trash entries older than the tenant's own trash retention
    /// (settings, [`Kluis::set_trash_retention_setting`]) or, when it set none, `retention_ms`
    /// (the server's default), and forgets expired Idempotency-Key outcomes, for one tenant.
    /// Returns the number of records purged.
    pub async fn purge_expired_trash(&self, tenant: TenantId, retention_ms: i64) -> Result<u64> {
        let retention_ms = {
            let mut tx = self.store.tenant(tenant).begin_read().await?;
            match crate::settings::stored_trash_retention(&mut tx).await? {
                Some(days) => i64::from(days) * 86_400_000,
                None => retention_ms,
            }
        };
        let before = self.now() - retention_ms;
        let mut purged = 0;
        loop {
            let mut tx = self.store.tenant(tenant).begin().await?;
            let ids = tx.trash_older_than(before, 100).await?;
            if ids.is_empty() {
                tx.expire_idempotency(self.now() - IDEMPOTENCY_TTL_MS)
                    .await?;
                let keys = self.keys(&mut tx).await?;
                for key in tx.custom_values_trashed_before(before).await? {
                    tx.delete_custom_value(&key).await?;
                    let ev = Event::ok("custom_value.purge", "custom_value", &key)
                        .with(json!({"reason": "trash_retention"}));
                    self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                        .await?;
                    purged += 1;
                }
                tx.commit().await?;
                if purged > 0 {
                    self.checkpoint_soon(tenant);
                }
                return Ok(purged);
            }
            let keys = self.keys(&mut tx).await?;
            let mut blobs = Vec::new();
            for id in ids {
                let Some(row) = tx.any_record(id).await? else {
                    continue;
                };
                let t = ObjectType::parse(&row.object_type)
                    .ok_or_else(|| Error::internal("unknown object type stored"))?;
                tx.purge_record(id).await?;
                let files = self.purge_record_files(&mut tx, id).await?;
                let ev = event(
                    t,
                    "purge",
                    id,
                    json!({"reason": "trash_retention", "deleted_at": row.deleted_at.map(rfc3339), "files": files.len()}),
                );
                blobs.extend(files);
                self.audit(&mut tx, &keys, "system", &RequestContext::default(), ev)
                    .await?;
                purged += 1;
            }
            tx.commit().await?;
            crate::files::remove_blobs(blobs).await;
        }
    }
}

/// A trashed record the actor may read (its type's right and record scope); else not found.
async fn trashed_in(
    tx: &mut TenantTx,
    access: &crate::authz::Access,
    id: RecordId,
) -> Result<CrmRecordRow> {
    tx.any_record(id)
        .await?
        .filter(|r| r.deleted_at.is_some())
        .filter(|r| {
            ObjectType::parse(&r.object_type).is_some_and(|t| {
                access.can(t, Right::Read) && access.visibility(t).shows(r.owner_id)
            })
        })
        .ok_or_else(Error::not_found)
}
