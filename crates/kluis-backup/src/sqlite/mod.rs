//! SQLite: a consistent online snapshot plus continuous shipping of committed WAL frames, so
//! that any moment since the snapshot can be restored (to within one shipping tick).
//!
//! Design (see /work/notes/backup-sqlite.md for the reasoning):
//! - Kluis owns every connection. With shipping on, the store opens them all with
//!   `PRAGMA wal_autocheckpoint=0`, so only the shipper checkpoints; the WAL then only restarts
//!   (new salts, frame 0) after a checkpoint the shipper ran, having shipped everything first.
//! - Each tick the shipper reads the WAL file itself, validates salts and SQLite's cumulative
//!   checksums, and ships the frames up to the last commit frame as the next segment, stamped
//!   with the time the read *finished* (every commit in it happened before the stamp).
//! - When the WAL is large, it takes the write lock (`BEGIN IMMEDIATE` on its own connection),
//!   ships the tail, runs `PRAGMA wal_checkpoint(PASSIVE)` on another connection and releases.
//!   If that checkpoint backfilled every frame, the next WAL incarnation must carry a
//!   checkpoint sequence one higher and salt-1 one higher; anything else means someone else
//!   checkpointed, and continuity is not proven: a new generation (fresh snapshot) starts.
//! - Snapshot: under the write lock, find the end P of the committed WAL and open a read
//!   transaction on a second connection (its snapshot is then exactly P); release the lock;
//!   copy the database through SQLite's online backup API inside that read transaction.
//!   Deviation from the first plan (copy the main file while nobody checkpoints): opening and
//!   closing the database file with plain file IO inside the server process would drop the
//!   POSIX locks SQLite's own connections hold on it (fcntl locks are per process and per
//!   file, released by any close), risking corruption; the backup API reads through SQLite.
//!   The page copy is page-for-page (same page numbers), so frames apply on top of it.

pub mod restore;
pub mod segment;
pub mod wal;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::manifest::{self, Entry, ManifestBody};
use crate::seal::{BackupKey, CHUNK};
use crate::{BackupError, Backups};
use wal::WalPos;

pub use restore::{
    GenView, PruneOutcome, RestoreOutcome, candidates, generations, list, prune, restore,
    restore_generation, signing_seed, snapshot_info, verify,
};

/// Object names of a generation, under `sqlite/<generation>/`.
pub const PREFIX: &str = "sqlite";

pub fn gen_prefix(generation: &str) -> String {
    format!("{PREFIX}/{generation}")
}
pub fn key_name(generation: &str) -> String {
    format!("{PREFIX}/{generation}/key")
}
pub fn signing_key_name(generation: &str) -> String {
    format!("{PREFIX}/{generation}/audit-signing-key")
}
pub fn snap_name(generation: &str, n: u64) -> String {
    format!("{PREFIX}/{generation}/snap/{n:06}")
}
pub fn seg_name(generation: &str, seq: u64, stamp_ms: i64) -> String {
    format!("{PREFIX}/{generation}/wal/{seq:08}-{stamp_ms:013}")
}

/// What manifest part 0 records about the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    #[serde(with = "time::serde::rfc3339")]
    pub snapshot_at: OffsetDateTime,
    pub db_bytes: u64,
    pub page_size: u32,
    pub chunks: u64,
    /// The committed end of the WAL the snapshot includes (None: there was no WAL).
    pub wal: Option<WalPos>,
    pub kept_for: Vec<String>,
    /// Rows per table in the snapshot (restore drills compare a restore against them).
    #[serde(default)]
    pub row_counts: std::collections::BTreeMap<String, i64>,
}

/// Tuning of the shipper.
#[derive(Debug, Clone)]
pub struct ShipperConfig {
    /// How often new frames are shipped (the RPO).
    pub tick: Duration,
    /// Checkpoint (and let the WAL restart) once this much WAL has been shipped.
    pub checkpoint_bytes: u64,
    /// Write a manifest part at least this often while frames arrive.
    pub manifest_every: Duration,
    /// Start a new generation (fresh snapshot) this often.
    pub generation_every: Duration,
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            tick: Duration::from_secs(1),
            checkpoint_bytes: 4 << 20,
            manifest_every: Duration::from_secs(60),
            generation_every: Duration::from_secs(24 * 3600),
        }
    }
}

struct Gen {
    id: String,
    key: BackupKey,
    lock_until: OffsetDateTime,
    started: OffsetDateTime,
    /// Next frame to ship; None when the snapshot saw no WAL.
    pos: Option<WalPos>,
    /// The last checkpoint backfilled everything shipped: a WAL restart is expected.
    expect_restart: bool,
    seg_seq: u64,
    part_seq: u64,
    prev_part: Option<String>,
    pending: Vec<Entry>,
    last_part_at: OffsetDateTime,
    shipped_until: OffsetDateTime,
    info0: Option<SnapshotInfo>,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickOutcome {
    pub segments: u64,
    pub frames: u64,
    pub new_generation: Option<String>,
    pub checkpointed: bool,
}

enum Ship {
    Done { segments: u64, frames: u64 },
    ContinuityLost(&'static str),
}

/// Ships one SQLite database into a repository. Blocking file IO happens inline: run it on a
/// thread of its own (see `kluis serve`), not on a shared async worker.
pub struct Shipper {
    b: Backups,
    db: PathBuf,
    wal: PathBuf,
    /// Holds the database open for the shipper's lifetime (so no other connection is ever the
    /// last to close, which would checkpoint and delete the WAL) and takes the write lock.
    lock: Connection,
    ckpt: Connection,
    current: Option<Gen>,
    pub cfg: ShipperConfig,
    /// The stamp of the latest shipped change.
    pub shipped_until: Option<OffsetDateTime>,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn compact(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A generation id starts with its start time, so names sort chronologically.
pub fn new_generation_id(t: OffsetDateTime) -> String {
    let r: [u8; 4] = kluis_crypto::token::random_bytes();
    format!("{}-{}", compact(t), hex::encode(r))
}

/// The start time encoded in a generation id (`YYYYMMDDTHHMMSS.mmmZ-<random>`).
pub fn generation_time(id: &str) -> Option<OffsetDateTime> {
    let s = id.get(..20)?;
    if s.get(15..16)? != "." || s.get(19..20)? != "Z" {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(n(0, 4)?).ok()?,
        time::Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?,
        u8::try_from(n(6, 8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(n(9, 11)?).ok()?,
        u8::try_from(n(11, 13)?).ok()?,
        u8::try_from(n(13, 15)?).ok()?,
    )
    .ok()?;
    let ms = i64::from(n(16, 19)?);
    Some(date.with_time(t).assume_utc() + time::Duration::milliseconds(ms))
}

fn open_conn(db: &Path) -> Result<Connection, BackupError> {
    let c = Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(30))?;
    // Never checkpoint from here except on purpose.
    c.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(c)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

impl Shipper {
    pub fn open(b: Backups, db: &Path, cfg: ShipperConfig) -> Result<Shipper, BackupError> {
        if b.signer.is_none() {
            return Err(BackupError::Invalid(
                "writing backups needs the audit signing key".into(),
            ));
        }
        let lock = open_conn(db)?;
        let mode: String = lock.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(BackupError::Sqlite(format!(
                "the database is in {mode} mode; backups need WAL mode"
            )));
        }
        Ok(Shipper {
            ckpt: open_conn(db)?,
            lock,
            wal: wal_path(db),
            db: db.to_path_buf(),
            b,
            current: None,
            cfg,
            shipped_until: None,
        })
    }

    /// The generation being written, if any.
    pub fn generation(&self) -> Option<&str> {
        self.current.as_ref().map(|g| g.id.as_str())
    }

    /// Ships new committed frames; starts a generation when none is open, when the current
    /// one is older than `generation_every`, or when WAL continuity cannot be proven.
    pub async fn tick(&mut self) -> Result<TickOutcome, BackupError> {
        let mut out = TickOutcome::default();
        let stale = self
            .current
            .as_ref()
            .is_none_or(|g| (now() - g.started).unsigned_abs() >= self.cfg.generation_every);
        if stale {
            out.new_generation = Some(self.rotate("scheduled").await?);
            return Ok(out);
        }
        match self.ship().await? {
            Ship::Done { segments, frames } => {
                out.segments = segments;
                out.frames = frames;
            }
            Ship::ContinuityLost(why) => {
                out.new_generation = Some(self.rotate(why).await?);
                return Ok(out);
            }
        }
        // Once a checkpoint backfilled everything, nothing is gained by another until a
        // writer has restarted the WAL (and the lock would be taken every tick on an idle
        // database).
        let big = self.current.as_ref().is_some_and(|g| {
            !g.expect_restart
                && g.pos
                    .is_some_and(|p| p.offset() >= self.cfg.checkpoint_bytes)
        });
        if big {
            match self.checkpoint().await? {
                Some(Ship::ContinuityLost(why)) => {
                    out.new_generation = Some(self.rotate(why).await?);
                    return Ok(out);
                }
                Some(Ship::Done { segments, frames }) => {
                    out.segments += segments;
                    out.frames += frames;
                    out.checkpointed = true;
                }
                None => {}
            }
        }
        let due = self.current.as_ref().is_some_and(|g| {
            !g.pending.is_empty()
                && (now() - g.last_part_at).unsigned_abs() >= self.cfg.manifest_every
        });
        if due {
            self.write_part(false).await?;
        }
        Ok(out)
    }

    /// Closes the current generation (final manifest part) and starts a new one.
    async fn rotate(&mut self, why: &str) -> Result<String, BackupError> {
        if self.current.is_some() {
            self.close().await?;
        }
        tracing::info!(reason = why, "starting a new backup generation");
        self.start_generation().await
    }

    /// Ships what is left and writes the final manifest part of the current generation.
    pub async fn close(&mut self) -> Result<(), BackupError> {
        if self.current.is_some() {
            // Best effort: continuity lost at this point only means the tail stays unshipped
            // in this generation; the next one starts from a fresh snapshot.
            let _ = self.ship().await?;
            self.write_part(true).await?;
            self.current = None;
        }
        Ok(())
    }

    /// Takes a snapshot as generation `id`; returns its id. Part 0 of its manifest is written
    /// only once every snapshot object is stored: until then the generation is incomplete
    /// and nothing uses it (a crash here leaves the previous backups as they were).
    pub async fn start_generation(&mut self) -> Result<String, BackupError> {
        let started = now();
        let id = new_generation_id(started);
        let existing: Vec<OffsetDateTime> = generations(&self.b)
            .await?
            .iter()
            .filter(|g| g.complete)
            .map(|g| g.started)
            .collect();
        let (lock_until, kept_for) = self.b.policy.lock_for_new(&existing, started);
        let key = BackupKey::generate(self.b.repo_id)?;
        let mut entries = Vec::new();
        let wrapped = key.wrap(&self.b.kms, &id)?;
        entries.push(Entry::of(&key_name(&id), &wrapped));
        self.b
            .repo
            .put_locked(&key_name(&id), wrapped, lock_until)
            .await?;
        if let Some(signer) = &self.b.signer {
            let name = signing_key_name(&id);
            let sealed = key.seal(&name, signer.to_bytes().as_slice())?;
            entries.push(Entry::of(&name, &sealed));
            self.b.repo.put_locked(&name, sealed, lock_until).await?;
        }

        // Position and read snapshot under the write lock (see the module note).
        let tmp = snapshot_tmp(&self.db);
        let _ = std::fs::remove_file(&tmp);
        self.lock.execute_batch("BEGIN IMMEDIATE")?;
        let positioned =
            (|| -> Result<(Option<WalPos>, Connection, OffsetDateTime), BackupError> {
                let pos = match wal::read_header(&self.wal)? {
                    Some(h) => Some(wal::scan_committed(&self.wal, &h)?),
                    None => None,
                };
                let snap = open_conn(&self.db)?;
                snap.execute_batch("BEGIN")?;
                let _: i64 =
                    snap.query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))?;
                Ok((pos, snap, now()))
            })();
        let released = self.lock.execute_batch("COMMIT");
        let (pos, snap, snapshot_at) = positioned?;
        released?;
        let page_size: u32 = snap.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let row_counts = row_counts(&snap)?;
        {
            let mut dst = Connection::open(&tmp)?;
            let backup = rusqlite::backup::Backup::new(&snap, &mut dst)?;
            loop {
                match backup.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    _ => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        snap.execute_batch("COMMIT")?;
        drop(snap);
        let stored = self.store_snapshot(&id, &key, &tmp, lock_until).await;
        let _ = std::fs::remove_file(&tmp);
        let (db_bytes, chunks, snap_entries) = stored?;
        entries.extend(snap_entries);
        self.current = Some(Gen {
            id: id.clone(),
            key,
            lock_until,
            started,
            pos,
            expect_restart: false,
            seg_seq: 0,
            part_seq: 0,
            prev_part: None,
            pending: entries,
            last_part_at: started,
            shipped_until: snapshot_at,
            info0: Some(SnapshotInfo {
                snapshot_at,
                db_bytes,
                page_size,
                chunks,
                wal: pos,
                kept_for: kept_for.iter().map(|s| (*s).to_owned()).collect(),
                row_counts,
            }),
        });
        self.write_part(false).await?;
        self.shipped_until = Some(snapshot_at);
        Ok(id)
    }

    async fn store_snapshot(
        &self,
        id: &str,
        key: &BackupKey,
        tmp: &Path,
        lock_until: OffsetDateTime,
    ) -> Result<(u64, u64, Vec<Entry>), BackupError> {
        use std::io::Read;
        let mut f = std::fs::File::open(tmp)?;
        let mut total = 0u64;
        let mut n = 0u64;
        let mut entries = Vec::new();
        // One object in flight while the next is read and sealed (the write runs on a
        // blocking thread): at most two chunks in memory.
        let mut inflight: Option<tokio::task::JoinHandle<Result<(), crate::RepoError>>> = None;
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            (&mut f).take(CHUNK as u64).read_to_end(&mut buf)?;
            if buf.is_empty() && n > 0 {
                break;
            }
            total += buf.len() as u64;
            let name = snap_name(id, n);
            let sealed = key.seal(&name, &buf)?;
            entries.push(Entry::of(&name, &sealed));
            if let Some(h) = inflight.take() {
                h.await
                    .map_err(|e| BackupError::Io(format!("backup writer: {e}")))??;
            }
            let repo = self.b.repo.clone();
            inflight = Some(tokio::spawn(async move {
                repo.put_locked(&name, sealed, lock_until).await
            }));
            n += 1;
            if buf.len() < CHUNK {
                break;
            }
        }
        if let Some(h) = inflight.take() {
            h.await
                .map_err(|e| BackupError::Io(format!("backup writer: {e}")))??;
        }
        Ok((total, n, entries))
    }

    /// Ships the committed frames not yet shipped.
    async fn ship(&mut self) -> Result<Ship, BackupError> {
        let Some(g) = self.current.as_mut() else {
            return Ok(Ship::Done {
                segments: 0,
                frames: 0,
            });
        };
        let Some(header) = wal::read_header(&self.wal)? else {
            // No WAL (yet): nothing committed beyond the database file.
            return Ok(Ship::Done {
                segments: 0,
                frames: 0,
            });
        };
        let (from, new_wal) = match g.pos {
            None => (header, true),
            Some(p) if (p.salt1, p.salt2) == (header.salt1, header.salt2) => (p, false),
            Some(p) => {
                let proven = g.expect_restart
                    && header.ckpt_seq == p.ckpt_seq.wrapping_add(1)
                    && header.salt1 == p.salt1.wrapping_add(1)
                    && header.page_size == p.page_size;
                if !proven {
                    return Ok(Ship::ContinuityLost(
                        "the WAL restarted after a checkpoint the shipper did not run",
                    ));
                }
                (header, true)
            }
        };
        let to = wal::scan_committed(&self.wal, &from)?;
        if to.frame == from.frame {
            return Ok(Ship::Done {
                segments: 0,
                frames: 0,
            });
        }
        // Stamped after the read: every commit shipped happened before this moment.
        let stamp = now();
        let stamp_ms = i64::try_from(stamp.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let seg_lock = self.b.policy.lock_for_segment(g.lock_until, stamp);
        let mut reader = FrameReader::new(&self.wal, &from, &to)?;
        let mut segments = 0;
        let mut first = new_wal;
        while let Some((start, batch)) = reader.next_batch()? {
            let name = seg_name(&g.id, g.seg_seq, stamp_ms);
            let plain = segment::encode(first, stamp_ms, &start, &batch);
            let sealed = g.key.seal(&name, &plain)?;
            g.pending.push(Entry::of(&name, &sealed));
            self.b.repo.put_locked(&name, sealed, seg_lock).await?;
            g.seg_seq += 1;
            segments += 1;
            first = false;
        }
        // Shipped means durable in the repository.
        self.b.repo.flush().await?;
        g.pos = Some(to);
        g.expect_restart = false;
        g.shipped_until = stamp;
        self.shipped_until = Some(stamp);
        Ok(Ship::Done {
            segments,
            frames: to.frame - from.frame,
        })
    }

    /// Under the write lock: ship the tail, checkpoint, release. None if the lock was busy.
    async fn checkpoint(&mut self) -> Result<Option<Ship>, BackupError> {
        self.lock.execute_batch("BEGIN IMMEDIATE")?;
        let shipped = self.ship().await;
        let ck = match &shipped {
            Ok(Ship::Done { .. }) => Some(self.ckpt.query_row(
                "PRAGMA wal_checkpoint(PASSIVE)",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                },
            )),
            _ => None,
        };
        let released = self.lock.execute_batch("COMMIT");
        let shipped = shipped?;
        released?;
        if let Some(ck) = ck {
            let (busy, log, done) = ck?;
            if let Some(g) = self.current.as_mut() {
                let at = g.pos.map(|p| p.frame as i64);
                g.expect_restart = busy == 0 && log == done && Some(log) == at;
            }
        }
        Ok(Some(shipped))
    }

    /// Writes the next manifest part (all objects stored since the previous one).
    async fn write_part(&mut self, last: bool) -> Result<(), BackupError> {
        let Some(signer) = self.b.signer.clone() else {
            return Err(BackupError::Invalid("no signing key".into()));
        };
        let Some(g) = self.current.as_mut() else {
            return Ok(());
        };
        let info = match g.info0.take() {
            Some(i) => serde_json::to_value(&i),
            None => serde_json::to_value(PartInfo {
                shipped_until: g.shipped_until,
                segments: g.seg_seq,
            }),
        }
        .map_err(|e| BackupError::Io(e.to_string()))?;
        let body = ManifestBody {
            format: 1,
            repo_id: self.b.repo_id,
            generation: g.id.clone(),
            seq: g.part_seq,
            prev_sha256: g.prev_part.clone(),
            written: now(),
            entries: std::mem::take(&mut g.pending),
            info,
            last,
            signer: signer.verifier().to_vkey(),
        };
        let name = manifest::part_name(&gen_prefix(&g.id), g.part_seq);
        // The objects it names are durable before the part is written.
        self.b.repo.flush().await?;
        let stored = manifest::seal_part(&g.key, &signer, &name, &body)?;
        let sha = manifest::sha256_hex(&stored);
        let lock = self.b.policy.lock_for_segment(g.lock_until, now());
        self.b.repo.put_locked(&name, stored, lock).await?;
        self.b.repo.flush().await?;
        g.prev_part = Some(sha);
        g.part_seq += 1;
        g.last_part_at = now();
        Ok(())
    }

    /// The database file this shipper backs up.
    pub fn database(&self) -> &Path {
        &self.db
    }
}

/// What later manifest parts record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartInfo {
    #[serde(with = "time::serde::rfc3339")]
    pub shipped_until: OffsetDateTime,
    pub segments: u64,
}

/// Rows per table, as one read transaction sees them.
pub fn row_counts(c: &Connection) -> Result<std::collections::BTreeMap<String, i64>, BackupError> {
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = std::collections::BTreeMap::new();
    for t in tables {
        let n: i64 = c.query_row(
            &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
            [],
            |r| r.get(0),
        )?;
        out.insert(t, n);
    }
    Ok(out)
}

fn snapshot_tmp(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".backup-snapshot.tmp");
    PathBuf::from(s)
}

/// Reads validated frames in batches of at most [`CHUNK`] bytes.
struct FrameReader {
    r: std::io::BufReader<std::fs::File>,
    pos: WalPos,
    to: WalPos,
    per_batch: u64,
}

impl FrameReader {
    fn new(wal: &Path, from: &WalPos, to: &WalPos) -> std::io::Result<Self> {
        use std::io::{Seek, SeekFrom};
        let mut f = std::fs::File::open(wal)?;
        f.seek(SeekFrom::Start(from.offset()))?;
        Ok(FrameReader {
            r: std::io::BufReader::with_capacity(1 << 20, f),
            pos: *from,
            to: *to,
            per_batch: (CHUNK as u64 / from.frame_len()).max(1),
        })
    }

    fn next_batch(&mut self) -> Result<Option<(WalPos, Vec<u8>)>, BackupError> {
        use std::io::Read;
        if self.pos.frame >= self.to.frame {
            return Ok(None);
        }
        let start = self.pos;
        let n = self.per_batch.min(self.to.frame - self.pos.frame);
        let frame_len = start.frame_len() as usize;
        let mut batch = vec![0u8; n as usize * frame_len];
        self.r.read_exact(&mut batch)?;
        for frame in batch.chunks_exact(frame_len) {
            self.pos = wal::check_frame(&self.pos, frame)
                .map(|(p, _)| p)
                .ok_or_else(|| BackupError::Sqlite("the WAL changed while being shipped".into()))?;
        }
        Ok(Some((start, batch)))
    }
}

/// Takes one snapshot into a new generation and closes it: `kluis backup create`.
pub async fn create_snapshot(b: &Backups, db: &Path) -> Result<String, BackupError> {
    let mut s = Shipper::open(b.clone(), db, ShipperConfig::default())?;
    let id = s.start_generation().await?;
    // Closed without shipping frames: a one-shot backup may run beside a server that is not
    // shipping (and checkpoints on its own), where the WAL after the snapshot is not ours to
    // read; the snapshot alone is the backup.
    s.write_part(true).await?;
    s.current = None;
    Ok(id)
}
