//! Reading generations back: list, verify (every byte), restore (to a point in time), prune.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::segment;
use super::wal::WalPos;
use super::{PREFIX, SnapshotInfo, gen_prefix, generation_time, key_name};
use crate::manifest;
use crate::report::{BackupSummary, CheckReport};
use crate::retention::{self, GenFacts};
use crate::seal::{BackupKey, SealError};
use crate::{BackupError, Backups, ObjectInfo};

/// One generation as the listing shows it (no decryption needed).
#[derive(Debug, Clone)]
pub struct GenView {
    pub id: String,
    pub started: OffsetDateTime,
    /// Has manifest part 0 (its snapshot was stored completely).
    pub complete: bool,
    pub objects: Vec<ObjectInfo>,
    pub stored_bytes: u64,
    pub retain_until: Option<OffsetDateTime>,
    /// The latest segment stamp (from the names), if any.
    pub last_stamp: Option<OffsetDateTime>,
}

fn seg_parts(name: &str) -> Option<(u64, i64)> {
    let file = name.rsplit('/').next()?;
    let (seq, stamp) = file.split_once('-')?;
    Some((seq.parse().ok()?, stamp.parse().ok()?))
}

fn ms_time(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// All generations in the repository, oldest first.
pub async fn generations(b: &Backups) -> Result<Vec<GenView>, BackupError> {
    let all = b.repo.list(&format!("{PREFIX}/")).await?;
    let mut by: BTreeMap<String, Vec<ObjectInfo>> = BTreeMap::new();
    for o in all {
        let Some(id) = o.name.split('/').nth(1) else {
            continue;
        };
        by.entry(id.to_owned()).or_default().push(o);
    }
    let mut out = Vec::new();
    for (id, objects) in by {
        let Some(started) = generation_time(&id) else {
            continue;
        };
        let part0 = manifest::part_name(&gen_prefix(&id), 0);
        let complete = objects.iter().any(|o| o.name == part0);
        let last_stamp = objects
            .iter()
            .filter(|o| o.name.contains("/wal/"))
            .filter_map(|o| seg_parts(&o.name))
            .map(|(_, ms)| ms_time(ms))
            .max();
        out.push(GenView {
            started,
            complete,
            stored_bytes: objects.iter().map(|o| o.size).sum(),
            retain_until: objects.iter().filter_map(|o| o.retain_until).max(),
            last_stamp,
            objects,
            id,
        });
    }
    out.sort_by(|a, b| (a.started, &a.id).cmp(&(b.started, &b.id)));
    Ok(out)
}

/// A generation opened and checked.
struct Loaded {
    key: BackupKey,
    info: SnapshotInfo,
    /// Segment names in order with their stamp.
    segments: Vec<(String, i64)>,
}

/// Opens the key and manifest chain, reads every object back; returns what restore needs and
/// the problems found. `Err` only for what stops the check itself (a wrong KEK).
async fn check(
    b: &Backups,
    g: &GenView,
    report: &mut CheckReport,
) -> Result<Option<Loaded>, BackupError> {
    let prefix = gen_prefix(&g.id);
    let present: HashMap<&str, &ObjectInfo> =
        g.objects.iter().map(|o| (o.name.as_str(), o)).collect();
    let wrapped = match b.repo.get(&key_name(&g.id)).await {
        Ok(w) => w,
        Err(crate::RepoError::NotFound(_)) => {
            report
                .problems
                .push(format!("missing: {}", key_name(&g.id)));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    report.objects_checked += 1;
    report.bytes_read += wrapped.len() as u64;
    let key = match BackupKey::unwrap(&b.kms, b.repo_id, &g.id, &wrapped) {
        Ok(k) => k,
        Err(SealError::WrongKek) => return Err(SealError::WrongKek.into()),
        Err(e) => return Err(e.into()),
    };
    // The manifest chain.
    let mut recorded: BTreeMap<String, manifest::Entry> = BTreeMap::new();
    recorded.insert(
        key_name(&g.id),
        manifest::Entry::of(&key_name(&g.id), &wrapped),
    );
    let mut info: Option<SnapshotInfo> = None;
    let mut prev: Option<String> = None;
    let mut closed = false;
    let mut seq = 0u64;
    let mut key_recorded = false;
    loop {
        let name = manifest::part_name(&prefix, seq);
        let stored = match b.repo.get(&name).await {
            Ok(s) => s,
            Err(crate::RepoError::NotFound(_)) => break,
            Err(e) => return Err(e.into()),
        };
        report.objects_checked += 1;
        report.bytes_read += stored.len() as u64;
        if closed {
            report
                .problems
                .push(format!("{name}: a manifest part after the final one"));
        }
        let body = match manifest::open_part(
            &key,
            &name,
            &stored,
            b.trusted.as_ref(),
            (b.repo_id, &g.id, seq),
        ) {
            Ok(body) => body,
            Err(e) => {
                report.problems.push(e.to_string());
                return Ok(None);
            }
        };
        if body.prev_sha256 != prev {
            report.problems.push(format!(
                "{name}: does not follow the previous manifest part (chain broken)"
            ));
        }
        if seq == 0 {
            match serde_json::from_value::<SnapshotInfo>(body.info.clone()) {
                Ok(i) => info = Some(i),
                Err(_) => report
                    .problems
                    .push(format!("{name}: no snapshot description")),
            }
        }
        for e in &body.entries {
            if e.name == key_name(&g.id) {
                key_recorded = recorded.get(&e.name).is_some_and(|k| k == e);
                continue;
            }
            if recorded.insert(e.name.clone(), e.clone()).is_some() {
                report.problems.push(format!("{}: listed twice", e.name));
            }
        }
        prev = Some(manifest::sha256_hex(&stored));
        closed |= body.last;
        seq += 1;
    }
    let Some(info) = info else {
        report.problems.push(format!(
            "{}: no valid first manifest part (incomplete backup)",
            g.id
        ));
        return Ok(None);
    };
    if !key_recorded {
        report.problems.push(format!(
            "{}: changed or not in the manifest",
            key_name(&g.id)
        ));
    }
    // Every recorded object: present, same size and hash, opens under its name.
    let mut segments: Vec<(u64, String, i64)> = Vec::new();
    let mut snap_chunks = 0u64;
    for (name, e) in &recorded {
        if name == &key_name(&g.id) {
            continue;
        }
        if !present.contains_key(name.as_str()) {
            report.problems.push(format!("missing: {name}"));
            continue;
        }
        let stored = b.repo.get(name).await?;
        report.objects_checked += 1;
        report.bytes_read += stored.len() as u64;
        if stored.len() as u64 != e.size || manifest::sha256_hex(&stored) != e.sha256 {
            report.problems.push(format!(
                "changed: {name} (size or SHA-256 differs from the manifest)"
            ));
            continue;
        }
        if let Err(err) = key.open(name, &stored) {
            report.problems.push(err.to_string());
            continue;
        }
        if name.contains("/snap/") {
            snap_chunks += 1;
        } else if name.contains("/wal/")
            && let Some((s, ms)) = seg_parts(name)
        {
            segments.push((s, name.clone(), ms));
        }
    }
    if snap_chunks != info.chunks {
        report.problems.push(format!(
            "{}: {snap_chunks} of {} snapshot chunks",
            g.id, info.chunks
        ));
    }
    // Objects present but in no manifest: shipped after the last part (an open generation's
    // tail, or a crash before the next part). Acceptable only as a contiguous run of
    // segments after the recorded ones, in a generation that was not closed.
    let max_recorded = segments.iter().map(|s| s.0).max();
    for o in &g.objects {
        let is_part = o.name.starts_with(&format!("{prefix}/manifest/"));
        if is_part || recorded.contains_key(&o.name) || o.name == key_name(&g.id) {
            continue;
        }
        match seg_parts(&o.name) {
            Some((s, ms))
                if o.name.contains("/wal/") && !closed && max_recorded.is_none_or(|m| s > m) =>
            {
                let stored = b.repo.get(&o.name).await?;
                report.objects_checked += 1;
                report.bytes_read += stored.len() as u64;
                match key.open(&o.name, &stored) {
                    Ok(_) => segments.push((s, o.name.clone(), ms)),
                    Err(err) => report.problems.push(err.to_string()),
                }
            }
            _ => report
                .problems
                .push(format!("{}: not in any manifest", o.name)),
        }
    }
    segments.sort();
    for (i, (s, name, _)) in segments.iter().enumerate() {
        if *s != i as u64 {
            report
                .problems
                .push(format!("{name}: out of sequence (expected segment {i})"));
            break;
        }
    }
    // The frames themselves: each segment continues the previous one.
    let mut pos: Option<WalPos> = info.wal;
    let mut last_ms = i64::MIN;
    for (_, name, ms) in &segments {
        let stored = b.repo.get(name).await?;
        let plain = key.open(name, &stored)?;
        let Some((seg, end)) = segment::decode(&plain) else {
            report.problems.push(format!("{name}: malformed frames"));
            break;
        };
        let continues = match pos {
            Some(p) if !seg.new_wal => p == seg.start,
            Some(p) => {
                seg.start.frame == 0
                    && seg.start.ckpt_seq == p.ckpt_seq.wrapping_add(1)
                    && seg.start.salt1 == p.salt1.wrapping_add(1)
            }
            None => seg.new_wal && seg.start.frame == 0,
        };
        if !continues || seg.stamp_ms != *ms || *ms < last_ms {
            report
                .problems
                .push(format!("{name}: does not continue the previous segment"));
            break;
        }
        last_ms = *ms;
        pos = Some(end);
    }
    Ok(Some(Loaded {
        key,
        info,
        segments: segments.into_iter().map(|(_, n, ms)| (n, ms)).collect(),
    }))
}

/// Reads every object of generation `id` back and checks it against the signed manifests.
pub async fn verify(b: &Backups, id: &str) -> Result<CheckReport, BackupError> {
    let gens = generations(b).await?;
    let g = gens
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| BackupError::NotFound(format!("no backup {id}")))?;
    let mut report = CheckReport {
        backup_id: id.to_owned(),
        ok: false,
        objects_checked: 0,
        bytes_read: 0,
        problems: Vec::new(),
    };
    check(b, g, &mut report).await?;
    report.ok = report.problems.is_empty();
    Ok(report)
}

/// The backups in the repository, oldest first, with retention's verdict at `now`.
pub async fn list(b: &Backups, now: OffsetDateTime) -> Result<Vec<BackupSummary>, BackupError> {
    let gens = generations(b).await?;
    let decisions = retention::plan(&b.policy, &facts(&gens), now);
    let mut out = Vec::new();
    for (g, d) in gens.iter().zip(decisions) {
        let mut info: Option<SnapshotInfo> = None;
        let mut finished = g.started;
        if g.complete {
            let part0 = manifest::part_name(&gen_prefix(&g.id), 0);
            let wrapped = b.repo.get(&key_name(&g.id)).await?;
            let key = BackupKey::unwrap(&b.kms, b.repo_id, &g.id, &wrapped)?;
            let stored = b.repo.get(&part0).await?;
            if let Ok(body) = manifest::open_part(
                &key,
                &part0,
                &stored,
                b.trusted.as_ref(),
                (b.repo_id, &g.id, 0),
            ) {
                finished = body.written;
                info = serde_json::from_value(body.info).ok();
            }
        }
        let from = info.as_ref().map(|i| i.snapshot_at);
        out.push(BackupSummary {
            id: g.id.clone(),
            engine: "sqlite",
            kind: if g.complete { "snapshot" } else { "incomplete" }.to_owned(),
            started: g.started,
            finished,
            stored_bytes: g.stored_bytes,
            database_bytes: info.as_ref().map_or(0, |i| i.db_bytes),
            restorable_from: from,
            restorable_until: from.map(|f| g.last_stamp.map_or(f, |s| s.max(f))),
            kept_for: d.kept_for,
            retain_until: g.retain_until,
        });
    }
    Ok(out)
}

fn facts(gens: &[GenView]) -> Vec<GenFacts> {
    gens.iter()
        .map(|g| GenFacts {
            id: g.id.clone(),
            started: g.started,
            last: g.last_stamp.map_or(g.started, |s| s.max(g.started)),
            complete: g.complete,
            retain_until: g.retain_until,
        })
        .collect()
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreOutcome {
    pub generation: String,
    #[serde(with = "time::serde::rfc3339")]
    pub snapshot_at: OffsetDateTime,
    /// The stamp of the last segment applied (the state restored is the state then).
    #[serde(with = "time::serde::rfc3339")]
    pub restored_to: OffsetDateTime,
    pub segments_applied: u64,
    pub transactions_applied: u64,
    pub objects_checked: u64,
}

/// Restores the database as it was at `at` (None: the latest shipped state) into `target`,
/// which must not exist. The generation used is verified in full first; any problem refuses
/// the restore. Ends with `PRAGMA integrity_check`.
pub async fn restore(
    b: &Backups,
    at: Option<OffsetDateTime>,
    target: &Path,
) -> Result<RestoreOutcome, BackupError> {
    if target.exists() {
        return Err(BackupError::Io(format!(
            "{} exists; restore writes a new database",
            target.display()
        )));
    }
    let gens = generations(b).await?;
    let candidates = candidates(&gens, at);
    restore_from(b, &candidates, at, target).await
}

/// Restores generation `id` (as of `at`, or its latest shipped state).
pub async fn restore_generation(
    b: &Backups,
    id: &str,
    at: Option<OffsetDateTime>,
    target: &Path,
) -> Result<RestoreOutcome, BackupError> {
    if target.exists() {
        return Err(BackupError::Io(format!(
            "{} exists; restore writes a new database",
            target.display()
        )));
    }
    let gens = generations(b).await?;
    let g: Vec<&GenView> = gens.iter().filter(|g| g.id == id && g.complete).collect();
    if g.is_empty() {
        return Err(BackupError::NotFound(format!("no complete backup {id}")));
    }
    restore_from(b, &g, at, target).await
}

/// The complete generations that can restore `at` (None: the latest state), best first.
/// Several may overlap (the server's continuous one, a `kluis backup create` taken
/// meanwhile): prefer one whose shipped changes reach `at` (the latest snapshot among those:
/// fewest frames to apply); otherwise the one that reaches closest to it.
pub fn candidates(gens: &[GenView], at: Option<OffsetDateTime>) -> Vec<&GenView> {
    let end = |g: &GenView| g.last_stamp.map_or(g.started, |s| s.max(g.started));
    let mut c: Vec<&GenView> = gens
        .iter()
        .filter(|g| g.complete && at.is_none_or(|t| g.started <= t))
        .collect();
    c.sort_by_key(|g| {
        let covers = at.is_some_and(|t| end(g) >= t);
        let primary = if covers { g.started } else { end(g) };
        std::cmp::Reverse((covers, primary, g.started))
    });
    c
}

async fn restore_from(
    b: &Backups,
    candidates: &[&GenView],
    at: Option<OffsetDateTime>,
    target: &Path,
) -> Result<RestoreOutcome, BackupError> {
    let mut chosen = None;
    for &g in candidates {
        let mut report = CheckReport {
            backup_id: g.id.clone(),
            ok: false,
            objects_checked: 0,
            bytes_read: 0,
            problems: Vec::new(),
        };
        let loaded = check(b, g, &mut report).await?;
        match loaded {
            Some(l) if at.is_none_or(|t| l.info.snapshot_at <= t) => {
                if !report.problems.is_empty() {
                    return Err(BackupError::Invalid(format!(
                        "backup {} failed verification: {}",
                        g.id,
                        report.problems.join("; ")
                    )));
                }
                chosen = Some((g, l, report.objects_checked));
                break;
            }
            Some(_) => continue,
            None => {
                return Err(BackupError::Invalid(format!(
                    "backup {} failed verification: {}",
                    g.id,
                    report.problems.join("; ")
                )));
            }
        }
    }
    let Some((g, l, objects_checked)) = chosen else {
        return Err(BackupError::NotFound(match at {
            Some(t) => format!(
                "no backup reaches back to {}",
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
            None => "no complete backup in this repository".into(),
        }));
    };
    let tmp = {
        let mut s = target.as_os_str().to_owned();
        s.push(".restoring");
        PathBuf::from(s)
    };
    let _ = std::fs::remove_file(&tmp);
    let result = write_restore(b, &g.id, &l, at, &tmp).await;
    let (segments_applied, transactions_applied, restored_to) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let check = rusqlite::Connection::open(&tmp)
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)));
    match check {
        Ok(s) if s == "ok" => {}
        Ok(s) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(BackupError::Invalid(format!(
                "the restored database fails integrity_check: {s}"
            )));
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    }
    for ext in ["-wal", "-shm"] {
        let mut s = tmp.as_os_str().to_owned();
        s.push(ext);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
    std::fs::rename(&tmp, target)?;
    Ok(RestoreOutcome {
        generation: g.id.clone(),
        snapshot_at: l.info.snapshot_at,
        restored_to,
        segments_applied,
        transactions_applied,
        objects_checked,
    })
}

async fn write_restore(
    b: &Backups,
    id: &str,
    l: &Loaded,
    at: Option<OffsetDateTime>,
    tmp: &Path,
) -> Result<(u64, u64, OffsetDateTime), BackupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    for n in 0..l.info.chunks {
        let name = super::snap_name(id, n);
        let plain = l.key.open(&name, &b.repo.get(&name).await?)?;
        f.write_all(&plain)?;
    }
    let cutoff =
        at.map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX));
    let chosen: Vec<&(String, i64)> = l
        .segments
        .iter()
        .filter(|(_, ms)| cutoff.is_none_or(|c| *ms <= c))
        .collect();
    // Pass 1: where the last complete transaction ends (a crash mid-tick can leave a partial
    // one at the very end).
    let mut total = 0u64;
    let mut last_commit = 0u64;
    for (name, _) in &chosen {
        let plain = l.key.open(name, &b.repo.get(name).await?)?;
        let (seg, _) = segment::decode(&plain)
            .ok_or_else(|| BackupError::Invalid(format!("{name}: malformed")))?;
        for frame in seg.frames.chunks_exact(seg.start.frame_len() as usize) {
            total += 1;
            if super::wal::frame_page(frame).1 != 0 {
                last_commit = total;
            }
        }
    }
    // Pass 2: apply page writes up to it, truncating to the database size at each commit.
    let mut applied = 0u64;
    let mut txs = 0u64;
    let mut restored_to = l.info.snapshot_at;
    let mut segs = 0u64;
    'outer: for (name, ms) in &chosen {
        let plain = l.key.open(name, &b.repo.get(name).await?)?;
        let (seg, _) = segment::decode(&plain)
            .ok_or_else(|| BackupError::Invalid(format!("{name}: malformed")))?;
        let ps = u64::from(seg.start.page_size);
        segs += 1;
        for frame in seg.frames.chunks_exact(seg.start.frame_len() as usize) {
            if applied >= last_commit {
                break 'outer;
            }
            let (pgno, commit_size) = super::wal::frame_page(frame);
            let page = frame.get(super::wal::FRAME_HEADER..).unwrap_or_default();
            f.write_all_at(page, (u64::from(pgno).saturating_sub(1)) * ps)?;
            applied += 1;
            if commit_size != 0 {
                f.set_len(u64::from(commit_size) * ps)?;
                txs += 1;
                restored_to = ms_time(*ms);
            }
        }
    }
    f.sync_all()?;
    Ok((segs, txs, restored_to))
}

/// What prune did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneOutcome {
    /// Generations deleted entirely.
    pub deleted: Vec<String>,
    pub objects_deleted: u64,
    /// Generations due but (partly) refused by the repository's retention lock.
    pub refused: Vec<String>,
}

/// Deletes the generations retention marks due at `now`. The repository refuses any object
/// still under its lock, whatever `now` says.
pub async fn prune(b: &Backups, now: OffsetDateTime) -> Result<PruneOutcome, BackupError> {
    let gens = generations(b).await?;
    let decisions = retention::plan(&b.policy, &facts(&gens), now);
    let mut out = PruneOutcome::default();
    for (g, d) in gens.iter().zip(decisions) {
        if !d.due {
            continue;
        }
        // Part 0 first: an interrupted prune leaves an incomplete generation, never one that
        // looks complete with objects missing.
        let mut names: Vec<&str> = g.objects.iter().map(|o| o.name.as_str()).collect();
        let part0 = manifest::part_name(&gen_prefix(&g.id), 0);
        names.sort_by_key(|n| (*n != part0, n.to_owned()));
        let mut refused = false;
        for n in names {
            match b.repo.delete(n).await {
                Ok(()) => out.objects_deleted += 1,
                Err(crate::RepoError::Retained { .. }) => refused = true,
                Err(crate::RepoError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if refused {
            out.refused.push(g.id.clone());
        } else {
            out.deleted.push(g.id.clone());
        }
    }
    Ok(out)
}

/// The audit signing key stored with generation `id` (for an installation restored into a new
/// data directory).
pub async fn signing_seed(
    b: &Backups,
    id: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, BackupError> {
    let wrapped = b.repo.get(&key_name(id)).await?;
    let key = BackupKey::unwrap(&b.kms, b.repo_id, id, &wrapped)?;
    let name = super::signing_key_name(id);
    Ok(zeroize::Zeroizing::new(
        key.open(&name, &b.repo.get(&name).await?)?,
    ))
}

/// What manifest part 0 of generation `id` says about its snapshot (checked signature).
pub async fn snapshot_info(b: &Backups, id: &str) -> Result<SnapshotInfo, BackupError> {
    let wrapped = b.repo.get(&key_name(id)).await?;
    let key = BackupKey::unwrap(&b.kms, b.repo_id, id, &wrapped)?;
    let part0 = manifest::part_name(&gen_prefix(id), 0);
    let body = manifest::open_part(
        &key,
        &part0,
        &b.repo.get(&part0).await?,
        b.trusted.as_ref(),
        (b.repo_id, id, 0),
    )?;
    serde_json::from_value(body.info)
        .map_err(|_| BackupError::Invalid(format!("{id}: no snapshot description")))
}
