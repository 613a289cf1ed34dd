//! Search by fragment ("jan", "janss", "acme") over records whose values are all sealed.
//!
//! Exact lookups (email, phone, domain) use blind indexes; a fragment cannot. So each process
//! keeps, per tenant, an in-memory index of the short text values of live records, opened
//! under the tenant's key when the tenant is first searched. Nothing of it is ever written to
//! disk: someone holding the database file learns nothing new.
//!
//! * **Freshness across processes**: the tenant's audit log is the change feed. Every record
//!   write appends an event naming the record (`contact.update`, `deal.delete`, ...) in the
//!   same transaction, and the log's head counter is gapless and commit-ordered. Each search
//!   reads the head (one row); when it moved, the events since the index's head are read and
//!   the records they name re-read (or dropped). A truncated log, or very many changes, means
//!   a rebuild. So a write in any process is visible to the next search in every process.
//! * **Memory**: each record contributes at most [`TEXT_MAX`] bytes of folded text. The
//!   indexes of all tenants share [`BUDGET`] bytes; the least recently searched tenants are
//!   evicted first, and a tenant whose index alone exceeds the budget is searched from a fresh
//!   build that is not kept.
//! * **Results** are re-read from the store and filtered there, so a stale entry can at worst
//!   cost a wasted read, never show a record that is gone or changed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::db::TenantTx;
use crate::db::rows::{AuditFilter, CrmRecordRow, RecordFilter};
use serde_json::{Map, Value};

use super::{ObjectType, Record, RecordQuery, fields, open_fields, to_record};
use crate::authz::{FieldView, Visibility};
use crate::keys::TenantKeys;
use crate::{Error, Kluis, Page, Result, TenantId};
use kluis_types::RecordId;

/// Folded text kept per record, at most.
pub const TEXT_MAX: usize = 192;
/// Bytes all tenants' indexes may hold together (text plus bookkeeping).
pub const BUDGET: usize = 256 * 1024 * 1024;
/// Per-entry bookkeeping counted against the budget.
const ENTRY_OVERHEAD: usize = 64;
/// More changed records than this since the last search: rebuild instead of re-reading each.
const REBUILD_AFTER: usize = 20_000;
/// Query words considered.
const MAX_WORDS: usize = 8;

/// The object types with an index (notes are searched through the records they are about).
const INDEXED: [ObjectType; 5] = [
    ObjectType::Contact,
    ObjectType::Company,
    ObjectType::Deal,
    ObjectType::Ticket,
    ObjectType::Task,
];

fn slot(t: ObjectType) -> Option<usize> {
    INDEXED.iter().position(|x| *x == t)
}

struct Entry {
    id: RecordId,
    /// A contact's company, so "acme" finds the people of Acme.
    company: Option<RecordId>,
    text: Box<str>,
}

#[derive(Default)]
struct TenantIndex {
    built: bool,
    /// The audit log size this index reflects.
    head: i64,
    /// Entries per indexed type, sorted by id.
    entries: [Vec<Entry>; 5],
    bytes: usize,
}

impl TenantIndex {
    fn clear(&mut self) {
        *self = TenantIndex::default();
    }

    fn upsert(&mut self, t: ObjectType, e: Entry) {
        let Some(s) = slot(t) else { return };
        let v = &mut self.entries[s];
        self.bytes += e.text.len() + ENTRY_OVERHEAD;
        match v.binary_search_by(|x| x.id.cmp(&e.id)) {
            Ok(i) => {
                self.bytes = self.bytes.saturating_sub(v[i].text.len() + ENTRY_OVERHEAD);
                v[i] = e;
            }
            Err(i) => v.insert(i, e),
        }
    }

    fn remove(&mut self, t: ObjectType, id: RecordId) {
        let Some(s) = slot(t) else { return };
        let v = &mut self.entries[s];
        if let Ok(i) = v.binary_search_by(|x| x.id.cmp(&id)) {
            let e = v.remove(i);
            self.bytes = self.bytes.saturating_sub(e.text.len() + ENTRY_OVERHEAD);
        }
    }

    /// Ids of type `t` matching every word, in id order (descending if asked), after `after`.
    fn matching(
        &self,
        t: ObjectType,
        words: &[String],
        after: Option<RecordId>,
        descending: bool,
    ) -> Vec<RecordId> {
        let Some(s) = slot(t) else {
            return Vec::new();
        };
        let hit = |text: &str| words.iter().all(|w| text.contains(w.as_str()));
        let companies: HashSet<RecordId> = if t == ObjectType::Contact {
            self.entries[1]
                .iter()
                .filter(|e| hit(&e.text))
                .map(|e| e.id)
                .collect()
        } else {
            HashSet::new()
        };
        let ok = |e: &&Entry| {
            let past = match (after, descending) {
                (None, _) => true,
                (Some(a), false) => e.id > a,
                (Some(a), true) => e.id < a,
            };
            past && (hit(&e.text) || e.company.is_some_and(|c| companies.contains(&c)))
        };
        let v = &self.entries[s];
        if descending {
            v.iter().rev().filter(ok).map(|e| e.id).collect()
        } else {
            v.iter().filter(ok).map(|e| e.id).collect()
        }
    }
}

/// The per-tenant indexes of this process.
#[derive(Default)]
pub(crate) struct SearchIndexes {
    tenants: Mutex<HashMap<TenantId, Slot>>,
}

struct Slot {
    index: Arc<tokio::sync::Mutex<TenantIndex>>,
    used: Instant,
    /// Bytes as of the last search (for eviction).
    bytes: usize,
}

impl SearchIndexes {
    fn get(&self, t: TenantId) -> Arc<tokio::sync::Mutex<TenantIndex>> {
        let mut m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        let s = m.entry(t).or_insert_with(|| Slot {
            index: Arc::default(),
            used: Instant::now(),
            bytes: 0,
        });
        s.used = Instant::now();
        s.index.clone()
    }

    /// Notes a tenant's size after a search and evicts the least recently used others while
    /// the total is over the budget.
    fn settle(&self, t: TenantId, bytes: usize) {
        let mut m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m.get_mut(&t) {
            s.bytes = bytes;
        }
        loop {
            let total: usize = m.values().map(|s| s.bytes).sum();
            if total <= BUDGET {
                return;
            }
            let Some(oldest) = m
                .iter()
                .filter(|(k, _)| **k != t)
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k)
            else {
                return;
            };
            // An index being searched right now is dropped when that search ends.
            m.remove(&oldest);
        }
    }

    /// Forgets a tenant's index (its keys are gone or it was deleted).
    pub(crate) fn forget(&self, t: TenantId) {
        let mut m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        m.remove(&t);
    }

    /// Bytes held for a tenant (tests).
    pub(crate) fn bytes_of(&self, t: TenantId) -> usize {
        let m = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&t).map_or(0, |s| s.bytes)
    }
}

/// Lower case without accents, so "Müller" is found by "muller" and "mül".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        for l in c.to_lowercase() {
            let base = match l {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => "a",
                'ç' | 'ć' | 'č' => "c",
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => "e",
                'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
                'ñ' | 'ń' => "n",
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' => "o",
                'ù' | 'ú' | 'û' | 'ü' | 'ū' => "u",
                'ý' | 'ÿ' => "y",
                'š' | 'ś' => "s",
                'ž' | 'ź' | 'ż' => "z",
                'ł' => "l",
                'ß' => "ss",
                'æ' => "ae",
                'œ' => "oe",
                'ĳ' => "ij",
                _ => {
                    out.push(l);
                    continue;
                }
            };
            out.push_str(base);
        }
    }
    out
}

/// The words of a query, folded (empty: no search).
pub fn query_words(q: &str) -> Vec<String> {
    q.split_whitespace()
        .map(fold)
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .collect()
}

/// The searchable text of a record: its one-line values (names, email, phone, city, custom
/// text), folded, at most [`TEXT_MAX`] bytes.
fn entry_text(t: ObjectType, f: &Map<String, Value>) -> Box<str> {
    let long: Vec<&str> = t
        .fields()
        .iter()
        .filter(|s| s.kind == fields::Kind::LongText)
        .map(|s| s.name)
        .collect();
    let mut out = String::new();
    // Title fields first, so truncation keeps what people search for most.
    let first = ["first_name", "last_name", "name", "subject", "title"];
    let ordered = first
        .iter()
        .filter_map(|k| f.get(*k).map(|v| (*k, v)))
        .chain(
            f.iter()
                .filter(|(k, _)| !first.contains(&k.as_str()))
                .map(|(k, v)| (k.as_str(), v)),
        );
    for (k, v) in ordered {
        let Some(s) = v.as_str() else { continue };
        if long.contains(&k) || s.len() > 200 {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&fold(s));
        if out.len() >= TEXT_MAX {
            break;
        }
    }
    if out.len() > TEXT_MAX {
        let mut end = TEXT_MAX;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out.into_boxed_str()
}

fn entry_of(keys: &TenantKeys, t: ObjectType, r: &CrmRecordRow) -> Result<Entry> {
    let f = open_fields(keys, r)?;
    Ok(Entry {
        id: r.id,
        company: r.company_id,
        text: entry_text(t, &f),
    })
}

/// With field rules, a match must hold on the fields the reader may see: the index covers
/// every field, and a hit on a hidden or masked one would tell its value. (A contact found
/// through its company's name then needs the words in its own visible fields.)
fn visible_text_matches(fv: &FieldView, t: ObjectType, r: &Record, words: &[String]) -> bool {
    if fv.is_empty() {
        return true;
    }
    let mut visible = r.fields.clone();
    visible.retain(|k, _| fv.searchable(k));
    let text = entry_text(t, &visible);
    words.iter().all(|w| text.contains(w.as_str()))
}

/// Rows per page while building.
const BUILD_PAGE: i64 = 1000;

async fn build(tx: &mut TenantTx, keys: &TenantKeys, idx: &mut TenantIndex) -> Result<()> {
    idx.clear();
    // The head first: a change committed after it is read again by the next refresh.
    idx.head = tx.audit_size().await?;
    for t in INDEXED {
        let filter = RecordFilter {
            object_type: Some(t.as_str().to_owned()),
            ..Default::default()
        };
        let mut after = None;
        loop {
            let rows = tx.list_records(&filter, after, BUILD_PAGE).await?;
            let done = (rows.len() as i64) < BUILD_PAGE;
            after = rows.last().map(|r| r.id);
            let s = slot(t).ok_or_else(|| Error::internal("search slot"))?;
            for r in &rows {
                let e = entry_of(keys, t, r)?;
                idx.bytes += e.text.len() + ENTRY_OVERHEAD;
                // Rows come in id order: appending keeps the entries sorted.
                idx.entries[s].push(e);
            }
            if done {
                break;
            }
        }
    }
    idx.built = true;
    Ok(())
}

/// Brings the index up to the audit log's head: re-reads the records changed since.
async fn refresh(tx: &mut TenantTx, keys: &TenantKeys, idx: &mut TenantIndex) -> Result<()> {
    if !idx.built {
        return build(tx, keys, idx).await;
    }
    let head = tx.audit_size().await?;
    if head == idx.head {
        return Ok(());
    }
    let (truncated_before, _, _) = tx.audit_truncation().await?;
    if idx.head < truncated_before || head < idx.head {
        return build(tx, keys, idx).await;
    }
    let mut changed: Vec<(ObjectType, RecordId)> = Vec::new();
    let mut seen = HashSet::new();
    let mut after = idx.head.checked_sub(1);
    let mut reached = idx.head;
    'feed: loop {
        let batch = tx
            .audit_events(after, 5000, &AuditFilter::default())
            .await?;
        let Some(last) = batch.last() else { break };
        after = Some(last.seq);
        for e in &batch {
            if e.seq >= head {
                break 'feed;
            }
            reached = e.seq + 1;
            let (Some(ot), Some(oid)) = (&e.object_type, &e.object_id) else {
                continue;
            };
            let Some(t) = ObjectType::parse(ot).filter(|t| slot(*t).is_some()) else {
                continue;
            };
            let Ok(id) = oid.parse::<uuid::Uuid>() else {
                continue;
            };
            if seen.insert(id) {
                changed.push((t, RecordId(id)));
            }
            if changed.len() > REBUILD_AFTER {
                return build(tx, keys, idx).await;
            }
        }
    }
    for (t, id) in changed {
        match tx.record(t.as_str(), id).await? {
            Some(r) if r.deleted_at.is_none() => idx.upsert(t, entry_of(keys, t, &r)?),
            _ => idx.remove(t, id),
        }
    }
    idx.head = reached;
    Ok(())
}

/// Whether a row passes the plain-column filters of `q` (what the SQL of a list tests).
fn row_passes(q: &RecordQuery, r: &CrmRecordRow) -> bool {
    let opt_eq = |want: Option<&str>, have: Option<&str>| want.is_none_or(|w| have == Some(w));
    let date_in = |v: Option<&str>, from: &Option<String>, to: &Option<String>| {
        from.as_deref().is_none_or(|f| v.is_some_and(|v| v >= f))
            && to.as_deref().is_none_or(|t| v.is_some_and(|v| v <= t))
    };
    r.deleted_at.is_none()
        && q.owner_id.is_none_or(|o| r.owner_id == Some(o))
        && q.company_id.is_none_or(|c| r.company_id == Some(c))
        && q.created_from.is_none_or(|f| r.created_at >= f)
        && q.created_to.is_none_or(|t| r.created_at < t)
        && q.updated_from.is_none_or(|f| r.updated_at >= f)
        && q.updated_to.is_none_or(|t| r.updated_at < t)
        && q.pipeline_id.is_none_or(|p| r.deal.pipeline_id == Some(p))
        && q.stage_id.is_none_or(|s| r.deal.stage_id == Some(s))
        && opt_eq(q.priority.as_deref(), r.deal.priority.as_deref())
        && date_in(r.deal.close_date.as_deref(), &q.close_from, &q.close_to)
        && q.done.is_none_or(|d| r.task.done_at.is_some() == d)
        && date_in(r.task.due_date.as_deref(), &q.due_from, &q.due_to)
}

/// Whether an enriched record passes the filters that need its links (outcome, tag, contact).
fn record_passes(q: &RecordQuery, r: &Record) -> bool {
    q.outcome
        .as_deref()
        .is_none_or(|o| r.outcome.as_deref() == Some(o))
        && q.tag_id.is_none_or(|t| r.tag_ids.contains(&t))
        && q.contact_id.is_none_or(|c| {
            r.contact_ids
                .as_ref()
                .is_some_and(|ids: &Vec<RecordId>| ids.contains(&c))
        })
        && q.related_id.is_none_or(|c| {
            r.related_ids
                .as_ref()
                .is_some_and(|ids: &Vec<RecordId>| ids.contains(&c))
        })
}

/// Candidates loaded and filtered per round.
const LOAD_BATCH: usize = 64;

impl Kluis {
    /// One page of live records of type `t` whose text contains every word of `text` (a
    /// contact also when its company's does), filtered by `q`, in id order. No
    /// authorisation, no audit: the list that calls it does both.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn search_page(
        &self,
        tenant: TenantId,
        (vis, fv): (&Visibility, &FieldView),
        t: ObjectType,
        q: &RecordQuery,
        text: &str,
        after: Option<RecordId>,
        limit: i64,
    ) -> Result<Page<Record>> {
        if q.email.is_some() || q.phone.is_some() || q.domain.is_some() {
            return Err(Error::validation(
                "q",
                "one_lookup",
                "search with q or look up by email, phone or domain, not both",
            ));
        }
        let words = query_words(text);
        let mut tx = self.store.tenant(tenant).begin_read().await?;
        let keys = match self.keys(&mut tx).await {
            Ok(k) => k,
            Err(e) => {
                self.search.forget(tenant);
                return Err(e);
            }
        };
        let index = self.search.get(tenant);
        let candidates = {
            let mut idx = index.lock().await;
            refresh(&mut tx, &keys, &mut idx).await?;
            let ids = if slot(t).is_some() {
                idx.matching(t, &words, after, q.newest_first)
            } else {
                Vec::new()
            };
            let bytes = idx.bytes;
            if bytes > BUDGET {
                // Too large to keep: this search used it, the next builds it again.
                idx.clear();
                self.search.settle(tenant, 0);
            } else {
                self.search.settle(tenant, bytes);
            }
            ids
        };
        let want = usize::try_from(limit).unwrap_or(50);
        let mut items: Vec<Record> = Vec::with_capacity(want + 1);
        for chunk in candidates.chunks(LOAD_BATCH) {
            let mut recs = Vec::with_capacity(chunk.len());
            for id in chunk {
                // Record scope holds here as in lists: a match outside it is never loaded
                // further, so neither its fields nor its existence reach the answer.
                if let Some(r) = tx.record(t.as_str(), *id).await?
                    && vis.shows(r.owner_id)
                    && row_passes(q, &r)
                {
                    recs.push(to_record(&keys, r)?);
                }
            }
            self.enrich(&mut tx, &mut recs).await?;
            items.extend(
                recs.into_iter()
                    .filter(|r| record_passes(q, r) && visible_text_matches(fv, t, r, &words)),
            );
            if items.len() > want {
                break;
            }
        }
        let more = items.len() > want;
        items.truncate(want);
        let next_cursor = if more {
            items.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Bytes this process holds in the search index of a tenant (tests, metrics).
    pub fn search_index_bytes(&self, tenant: TenantId) -> usize {
        self.search.bytes_of(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_and_words() {
        assert_eq!(fold("Müller-Lüdenscheidt"), "muller-ludenscheidt");
        assert_eq!(fold("ÉLODIE"), "elodie");
        assert_eq!(query_words("  Jan  JANSS "), vec!["jan", "janss"]);
        assert!(query_words("   ").is_empty());
    }

    #[test]
    fn entry_text_is_bounded_and_skips_long_text() {
        let mut f = Map::new();
        f.insert("first_name".into(), "Jan".into());
        f.insert("last_name".into(), "Janssen".into());
        f.insert("description".into(), "secret long text".into());
        f.insert("city".into(), "x".repeat(150).into());
        f.insert("job_title".into(), "y".repeat(100).into());
        let t = entry_text(ObjectType::Contact, &f);
        assert!(t.starts_with("jan\njanssen"));
        assert!(!t.contains("secret"));
        assert!(t.len() <= TEXT_MAX);
    }

    #[test]
    fn matching_by_fragment_company_and_cursor() {
        let mut idx = TenantIndex::default();
        let acme = RecordId(uuid::Uuid::from_u128(1));
        let jan = RecordId(uuid::Uuid::from_u128(2));
        let piet = RecordId(uuid::Uuid::from_u128(3));
        idx.upsert(
            ObjectType::Company,
            Entry {
                id: acme,
                company: None,
                text: "acme bv".into(),
            },
        );
        idx.upsert(
            ObjectType::Contact,
            Entry {
                id: piet,
                company: Some(acme),
                text: "piet\npuk".into(),
            },
        );
        idx.upsert(
            ObjectType::Contact,
            Entry {
                id: jan,
                company: None,
                text: "jan\njanssen".into(),
            },
        );
        let w = |s: &str| query_words(s);
        assert_eq!(
            idx.matching(ObjectType::Contact, &w("janss"), None, false),
            vec![jan]
        );
        assert_eq!(
            idx.matching(ObjectType::Contact, &w("ACME"), None, false),
            vec![piet]
        );
        assert_eq!(
            idx.matching(ObjectType::Contact, &w("a"), None, false),
            vec![jan, piet]
        );
        assert_eq!(
            idx.matching(ObjectType::Contact, &w("a"), Some(jan), false),
            vec![piet]
        );
        assert_eq!(
            idx.matching(ObjectType::Contact, &w("a"), None, true),
            vec![piet, jan]
        );
        let before = idx.bytes;
        idx.remove(ObjectType::Contact, jan);
        assert!(idx.bytes < before);
        assert!(
            idx.matching(ObjectType::Contact, &w("jan"), None, false)
                .is_empty()
        );
    }
}
