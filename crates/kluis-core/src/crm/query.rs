//! Reading records: list pages, exact lookups through blind indexes, streamed exports, and the
//! audit events reads leave.

use super::*;

/// Rows per page of an export: memory stays constant whatever the number of records.
pub(super) const EXPORT_PAGE: i64 = 500;

/// An authorised, recorded export in progress (see [`Kluis::export_records`]).
pub struct RecordExport {
    pub(super) tenant: TenantId,
    /// The exporter's record scope and field rules, fixed when the export was authorised.
    pub(super) vis: Visibility,
    pub(super) fields: FieldView,
    pub(super) object_type: ObjectType,
    pub(super) query: RecordQuery,
    pub(super) after: Option<RecordId>,
    pub(super) done: bool,
}

/// The store filter of a list query.
pub(super) fn record_filter(
    t: ObjectType,
    vis: &Visibility,
    q: &RecordQuery,
    lookup: Option<(String, Vec<u8>)>,
) -> RecordFilter {
    RecordFilter {
        object_type: Some(t.as_str().to_owned()),
        scope: vis.store_scope(),
        deleted: false,
        owner_id: q.owner_id,
        company_id: q.company_id,
        created_from: q.created_from,
        created_to: q.created_to,
        updated_from: q.updated_from,
        updated_to: q.updated_to,
        lookup,
        descending: q.newest_first,
        pipeline_id: q.pipeline_id,
        stage_id: q.stage_id,
        outcome: q.outcome.clone(),
        priority: q.priority.clone(),
        close_from: q.close_from.clone(),
        close_to: q.close_to.clone(),
        associated_with: q.contact_id.or(q.related_id),
        done: q.done,
        due_from: q.due_from.clone(),
        due_to: q.due_to.clone(),
        tag_id: q.tag_id,
    }
}

impl Kluis {
    pub async fn list_records(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        q: RecordQuery,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Record>> {
        let access = self.access(actor).await?;
        let vis = access.require(t, Right::Read)?;
        let fv = access.fields(t);
        let after = validate::cursor::<RecordId>(cursor)?;
        let page = self
            .query_records(
                actor.tenant(),
                (&vis, &fv),
                t,
                &q,
                after,
                page_limit(limit)?,
            )
            .await?;
        self.audit_read(actor, ctx, t, "list", page.items.len())
            .await?;
        Ok(page)
    }

    /// One page of live records matching `q` within `vis` (the caller authorised and chose
    /// `vis`, and records the read).
    pub(super) async fn query_records(
        &self,
        tenant: TenantId,
        (vis, fv): (&Visibility, &FieldView),
        t: ObjectType,
        q: &RecordQuery,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Page<Record>> {
        let mut page = self
            .query_unredacted(tenant, (vis, fv), t, q, after, limit)
            .await?;
        for r in &mut page.items {
            fv.redact(&mut r.fields);
        }
        Ok(page)
    }

    async fn query_unredacted(
        &self,
        tenant: TenantId,
        (vis, fv): (&Visibility, &FieldView),
        t: ObjectType,
        q: &RecordQuery,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Page<Record>> {
        // A field the reader may not see cannot be looked up either: a hit would tell its value.
        for (name, asked) in [
            ("email", &q.email),
            ("phone", &q.phone),
            ("domain", &q.domain),
        ] {
            if asked.is_some() && !fv.searchable(name) {
                return Err(Error::new(
                    ErrorKind::Forbidden,
                    "field_hidden",
                    "your role may not search on this field",
                )
                .with_field(name));
            }
        }
        if let Some(text) = q.q.as_deref().filter(|s| !s.trim().is_empty()) {
            if text.chars().count() > 200 {
                return Err(Error::validation("q", "too_long", "at most 200 characters"));
            }
            let filter = record_filter(t, vis, q, None);
            deals::check_filter(t, &filter, q)?;
            return self
                .search_page(tenant, (vis, fv), t, q, text, after, limit)
                .await;
        }
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = self.keys(&mut tx).await?;
        let lookup = self.query_lookup(&keys, t, q)?;
        let filter = record_filter(t, vis, q, lookup);
        deals::check_filter(t, &filter, q)?;
        let rows = tx.list_records(&filter, after, limit + 1).await?;
        let mut page = crate::users::page(
            rows,
            limit,
            |r| to_record(&keys, r),
            |r: &Record| r.id.to_string(),
        )?;
        self.enrich(&mut tx, &mut page.items).await?;
        Ok(page)
    }

    /// Starts an export of records matching `q` (CSV or JSON Lines, streamed page by page by
    /// the caller). A privileged action; the export and its filters are recorded.
    pub async fn export_records(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        q: RecordQuery,
        format: &str,
    ) -> Result<RecordExport> {
        let access = self.access(actor).await?;
        let vis = access.require(t, Right::Export)?;
        let fv = access.fields(t);
        // Validate the filters before recording anything.
        self.query_records(actor.tenant(), (&vis, &fv), t, &q, None, 1)
            .await?;
        let mut tx = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut tx).await?;
        let filters = json!({
            "format": format,
            "owner_id": q.owner_id, "company_id": q.company_id,
            "email": q.email.is_some(), "phone": q.phone.is_some(), "domain": q.domain.is_some(),
            "created_from": q.created_from, "created_to": q.created_to,
            "updated_from": q.updated_from, "updated_to": q.updated_to,
            "pipeline_id": q.pipeline_id, "stage_id": q.stage_id, "outcome": q.outcome,
            "close_from": q.close_from, "close_to": q.close_to, "contact_id": q.contact_id,
            "q": q.q.as_deref().is_some_and(|s| !s.trim().is_empty()),
            "scope": vis.store_scope_name(),
        });
        let ev = Event {
            action: action_name(t, "export"),
            success: true,
            object_type: Some(t.as_str()),
            object_id: None,
            details: json!({"filters": filters}),
        };
        self.audit(&mut tx, &keys, &actor_label(actor), ctx, ev)
            .await?;
        tx.commit().await?;
        Ok(RecordExport {
            tenant: actor.tenant(),
            vis,
            fields: fv,
            object_type: t,
            query: q,
            after: None,
            done: false,
        })
    }

    /// The next page of an export; None when done.
    pub async fn export_records_next(&self, e: &mut RecordExport) -> Result<Option<Vec<Record>>> {
        if e.done {
            return Ok(None);
        }
        let page = self
            .query_records(
                e.tenant,
                (&e.vis, &e.fields),
                e.object_type,
                &e.query,
                e.after,
                EXPORT_PAGE,
            )
            .await?;
        e.after = page.items.last().map(|r| r.id);
        e.done = page.next_cursor.is_none();
        Ok(Some(page.items))
    }

    /// Bulk reads of personal data are recorded as counts.
    pub(super) async fn audit_read(
        &self,
        actor: &Actor,
        ctx: &RequestContext,
        t: ObjectType,
        verb: &str,
        count: usize,
    ) -> Result<()> {
        let mut w = self.store.tenant(actor.tenant()).begin().await?;
        let keys = self.keys(&mut w).await?;
        let ev = Event {
            action: action_name(t, verb),
            success: true,
            object_type: Some(t.as_str()),
            object_id: None,
            details: json!({"count": count}),
        };
        self.audit(&mut w, &keys, &actor_label(actor), ctx, ev)
            .await?;
        w.commit().await?;
        Ok(())
    }

    pub(super) fn query_lookup(
        &self,
        keys: &TenantKeys,
        t: ObjectType,
        q: &RecordQuery,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let asked: Vec<(&str, &String)> = [
            ("email", &q.email),
            ("phone", &q.phone),
            ("domain", &q.domain),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        let [(field, raw)] = asked.as_slice() else {
            if asked.len() > 1 {
                return Err(Error::validation(
                    "email",
                    "one_lookup",
                    "filter on one of email, phone or domain at a time",
                ));
            }
            return Ok(None);
        };
        let spec = t
            .fields()
            .iter()
            .find(|s| s.lookup && s.name == *field)
            .ok_or_else(|| {
                Error::validation(
                    field,
                    "not_applicable",
                    "this object type has no such field",
                )
            })?;
        let key = fields::lookup_key(spec, raw.trim())
            .ok_or_else(|| Error::validation(field, "invalid_phone", "not a phone number"))?;
        Ok(Some((
            (*field).to_owned(),
            keys.blind(&lookup_domain(t, field), &key).to_vec(),
        )))
    }
}
