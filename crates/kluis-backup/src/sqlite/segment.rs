//! The plaintext format of a shipped WAL segment (sealed before it is stored).
//!
//! ```text
//! "KLWS" | version u8 = 1 | flags u8 (bit 0: first frames of a new WAL incarnation)
//! | stamp: unix milliseconds i64 | start position (WalPos: big_endian u8, page_size u32,
//! ckpt_seq u32, salt1 u32, salt2 u32, frame u64, ck1 u32, ck2 u32) | frame count u32
//! | frames (24-byte header + page each)
//! ```
//! All integers big-endian. The start position carries the running checksum, so each
//! segment's frames can be re-validated on their own at verify and restore time.

use super::wal::{WalPos, check_frame};

const MAGIC: &[u8; 4] = b"KLWS";
const HEADER: usize = 4 + 1 + 1 + 8 + (1 + 4 + 4 + 4 + 4 + 8 + 4 + 4) + 4;

pub struct Segment<'a> {
    pub new_wal: bool,
    pub stamp_ms: i64,
    pub start: WalPos,
    pub frames: &'a [u8],
}

pub fn encode(new_wal: bool, stamp_ms: i64, start: &WalPos, frames: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + frames.len());
    out.extend_from_slice(MAGIC);
    out.push(1);
    out.push(u8::from(new_wal));
    out.extend_from_slice(&stamp_ms.to_be_bytes());
    out.push(u8::from(start.big_endian));
    out.extend_from_slice(&start.page_size.to_be_bytes());
    out.extend_from_slice(&start.ckpt_seq.to_be_bytes());
    out.extend_from_slice(&start.salt1.to_be_bytes());
    out.extend_from_slice(&start.salt2.to_be_bytes());
    out.extend_from_slice(&start.frame.to_be_bytes());
    out.extend_from_slice(&start.ck.0.to_be_bytes());
    out.extend_from_slice(&start.ck.1.to_be_bytes());
    let count = frames.len() as u64 / start.frame_len();
    out.extend_from_slice(&(count as u32).to_be_bytes());
    out.extend_from_slice(frames);
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}

/// Parses a segment and checks every frame's salts and checksum chain; returns it with the
/// position after its last frame.
pub fn decode(bytes: &[u8]) -> Option<(Segment<'_>, WalPos)> {
    let mut c = Cursor(bytes);
    if &c.take::<4>()? != MAGIC || c.take::<1>()? != [1] {
        return None;
    }
    let flags = c.take::<1>()?[0];
    let stamp_ms = i64::from_be_bytes(c.take()?);
    let start = WalPos {
        big_endian: c.take::<1>()?[0] != 0,
        page_size: u32::from_be_bytes(c.take()?),
        ckpt_seq: u32::from_be_bytes(c.take()?),
        salt1: u32::from_be_bytes(c.take()?),
        salt2: u32::from_be_bytes(c.take()?),
        frame: u64::from_be_bytes(c.take()?),
        ck: (u32::from_be_bytes(c.take()?), u32::from_be_bytes(c.take()?)),
    };
    if !(512..=65536).contains(&start.page_size) {
        return None;
    }
    let count = u64::from(u32::from_be_bytes(c.take()?));
    let frames = c.0;
    if frames.len() as u64 != count * start.frame_len() {
        return None;
    }
    let mut pos = start;
    for frame in frames.chunks_exact(start.frame_len() as usize) {
        pos = check_frame(&pos, frame)?.0;
    }
    Some((
        Segment {
            new_wal: flags & 1 != 0,
            stamp_ms,
            start,
            frames,
        },
        pos,
    ))
}
