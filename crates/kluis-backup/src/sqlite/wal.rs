//! Reading SQLite's write-ahead log directly (https://www.sqlite.org/fileformat2.html#walformat).
//!
//! A frame is valid when its salts equal the header's and its cumulative checksum (over the
//! header, then every frame's first 8 header bytes and page) matches; the valid frames end at
//! the first that is not. Only frames up to the last *commit* frame (non-zero database size)
//! are committed: frames after it belong to a transaction in progress, or one that spilled
//! pages and rolled back (a later transaction overwrites them in place, and their checksum
//! chain then breaks).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub const WAL_HEADER: usize = 32;
pub const FRAME_HEADER: usize = 24;
const MAGIC_LE: u32 = 0x377f_0682;
const MAGIC_BE: u32 = 0x377f_0683;

/// A position in one incarnation of the WAL (one set of salts) with the running checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WalPos {
    pub big_endian: bool,
    pub page_size: u32,
    pub ckpt_seq: u32,
    pub salt1: u32,
    pub salt2: u32,
    /// Index of the next frame.
    pub frame: u64,
    /// Cumulative checksum after frame `frame - 1` (the header's for frame 0).
    pub ck: (u32, u32),
}

impl WalPos {
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER as u64 + u64::from(self.page_size)
    }
    pub fn offset(&self) -> u64 {
        WAL_HEADER as u64 + self.frame * self.frame_len()
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        x.copy_from_slice(s);
    }
    u32::from_be_bytes(x)
}

/// SQLite's WAL checksum, continued from `ck` over `data` (a multiple of 8 bytes).
pub fn checksum(big_endian: bool, data: &[u8], ck: (u32, u32)) -> (u32, u32) {
    let (mut s0, mut s1) = ck;
    for c in data.chunks_exact(8) {
        let w = |i: usize| {
            let mut x = [0u8; 4];
            x.copy_from_slice(&c[i..i + 4]);
            if big_endian {
                u32::from_be_bytes(x)
            } else {
                u32::from_le_bytes(x)
            }
        };
        s0 = s0.wrapping_add(w(0)).wrapping_add(s1);
        s1 = s1.wrapping_add(w(4)).wrapping_add(s0);
    }
    (s0, s1)
}

/// The WAL's header as a position at frame 0, or None when there is no valid header (no WAL,
/// an empty one, or one being created).
pub fn read_header(wal: &Path) -> std::io::Result<Option<WalPos>> {
    let mut f = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut h = [0u8; WAL_HEADER];
    if f.read_exact(&mut h).is_err() {
        return Ok(None);
    }
    Ok(parse_header(&h))
}

pub fn parse_header(h: &[u8; WAL_HEADER]) -> Option<WalPos> {
    let magic = be32(h, 0);
    let big_endian = match magic {
        MAGIC_LE => false,
        MAGIC_BE => true,
        _ => return None,
    };
    let page_size = be32(h, 8);
    if be32(h, 4) != 3_007_000
        || !(512..=65536).contains(&page_size)
        || !page_size.is_power_of_two()
    {
        return None;
    }
    let ck = checksum(big_endian, &h[..24], (0, 0));
    if ck != (be32(h, 24), be32(h, 28)) {
        return None;
    }
    Some(WalPos {
        big_endian,
        page_size,
        ckpt_seq: be32(h, 12),
        salt1: be32(h, 16),
        salt2: be32(h, 20),
        frame: 0,
        ck,
    })
}

/// Checks the frame `frame` (header + page) against `pos`; the position after it if valid,
/// and whether it is a commit frame.
pub fn check_frame(pos: &WalPos, frame: &[u8]) -> Option<(WalPos, bool)> {
    if frame.len() as u64 != pos.frame_len() {
        return None;
    }
    if be32(frame, 8) != pos.salt1 || be32(frame, 12) != pos.salt2 {
        return None;
    }
    let ck = checksum(pos.big_endian, &frame[..8], pos.ck);
    let ck = checksum(pos.big_endian, &frame[FRAME_HEADER..], ck);
    if ck != (be32(frame, 16), be32(frame, 20)) {
        return None;
    }
    let mut next = *pos;
    next.frame += 1;
    next.ck = ck;
    Some((next, be32(frame, 4) != 0))
}

/// Page number and (for a commit frame) database size in pages.
pub fn frame_page(frame: &[u8]) -> (u32, u32) {
    (be32(frame, 0), be32(frame, 4))
}

/// Scans valid frames from `from` and returns the position after the last commit frame (equal
/// to `from` when no complete transaction follows). Reads without holding frames in memory.
pub fn scan_committed(wal: &Path, from: &WalPos) -> std::io::Result<WalPos> {
    let mut f = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(*from),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(from.offset()))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut buf = vec![0u8; from.frame_len() as usize];
    let mut pos = *from;
    let mut committed = *from;
    loop {
        if r.read_exact(&mut buf).is_err() {
            break;
        }
        match check_frame(&pos, &buf) {
            Some((next, commit)) => {
                pos = next;
                if commit {
                    committed = pos;
                }
            }
            None => break,
        }
    }
    Ok(committed)
}
