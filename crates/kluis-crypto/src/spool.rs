//! Encrypted spooling of an upload to a temporary file.
//!
//! An import must not hold a database write transaction while a (possibly slow) client is still
//! uploading, so the upload is first written to a temporary file. That file holds personal data,
//! so it is encrypted: AES-256-GCM under a random key that exists only in this process's memory,
//! in chunks of [`CHUNK`] bytes. The nonce is the chunk counter (unique, as the key is used for one
//! file only) and the associated data says whether a chunk is the last one, so chunks cannot be
//! reordered, dropped or the file cut short without the reader noticing (the STREAM
//! construction of Hoang, Reyhanitabar, Rogaway and Vizár). When the process dies the key dies
//! with it and the file is unreadable.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::aead::{Aes256GcmKey, NONCE_LEN, TAG_LEN};
use crate::token::random_bytes;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;

fn nonce(counter: u64) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn aad(last: bool) -> [u8; 1] {
    [u8::from(last)]
}

/// Writes an encrypted spool; [`SpoolWriter::finish`] turns it into a reader.
pub struct SpoolWriter<F> {
    file: F,
    key: Aes256GcmKey,
    buf: Vec<u8>,
    counter: u64,
    len: u64,
}

impl<F: Write + Read + Seek> SpoolWriter<F> {
    /// Starts a spool in `file` (an empty, ideally anonymous, temporary file).
    pub fn new(file: F) -> io::Result<Self> {
        let key: [u8; 32] = random_bytes();
        let key = Aes256GcmKey::new(&key).map_err(io::Error::other)?;
        Ok(SpoolWriter {
            file,
            key,
            buf: Vec::with_capacity(CHUNK + TAG_LEN),
            counter: 0,
            len: 0,
        })
    }

    /// Plaintext bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn flush_chunk(&mut self, last: bool) -> io::Result<()> {
        let tag = self
            .key
            .seal_in_place(&nonce(self.counter), &aad(last), &mut self.buf)
            .map_err(io::Error::other)?;
        self.file.write_all(&self.buf)?;
        self.file.write_all(&tag)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Seals the last chunk and rewinds: the reader yields exactly the bytes written. The last
    /// chunk is always shorter than a full one (possibly empty), which is how the reader knows
    /// the end is really the end.
    pub fn finish(mut self) -> io::Result<SpoolReader<F>> {
        if self.buf.len() == CHUNK {
            self.flush_chunk(false)?;
        }
        self.flush_chunk(true)?;
        self.file.flush()?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(SpoolReader {
            file: self.file,
            key: self.key,
            chunk: Vec::with_capacity(CHUNK + TAG_LEN),
            pos: 0,
            counter: 0,
            done: false,
        })
    }
}

impl<F: Write + Read + Seek> Write for SpoolWriter<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            if self.buf.len() == CHUNK {
                self.flush_chunk(false)?;
            }
            let n = rest.len().min(CHUNK - self.buf.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        self.len += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a spool back; any tampering or truncation is an `InvalidData` error.
pub struct SpoolReader<F> {
    file: F,
    key: Aes256GcmKey,
    chunk: Vec<u8>,
    pos: usize,
    counter: u64,
    done: bool,
}

fn tampered() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "spool file altered or truncated",
    )
}

impl<F: Read> SpoolReader<F> {
    fn next_chunk(&mut self) -> io::Result<()> {
        self.chunk.resize(CHUNK + TAG_LEN, 0);
        let mut got = 0;
        while got < self.chunk.len() {
            match self.file.read(&mut self.chunk[got..])? {
                0 => break,
                n => got += n,
            }
        }
        if got < TAG_LEN {
            return Err(tampered());
        }
        // The writer makes every chunk but the last full-size (see `finish`).
        let last = got < CHUNK + TAG_LEN;
        let split = got - TAG_LEN;
        let tag: [u8; TAG_LEN] = self.chunk[split..got].try_into().map_err(|_| tampered())?;
        self.chunk.truncate(split);
        self.key
            .open_in_place(&nonce(self.counter), &aad(last), &mut self.chunk, &tag)
            .map_err(|_| tampered())?;
        self.counter += 1;
        self.pos = 0;
        self.done = last;
        Ok(())
    }
}

impl<F: Read> Read for SpoolReader<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn spool(data: &[u8]) -> Vec<u8> {
        let mut w = SpoolWriter::new(Cursor::new(Vec::new())).unwrap();
        // Uneven writes cross chunk boundaries.
        for part in data.chunks(7777) {
            w.write_all(part).unwrap();
        }
        assert_eq!(w.len(), data.len() as u64);
        w.finish().unwrap().file.into_inner()
    }

    fn round_trip(data: &[u8]) {
        let mut w = SpoolWriter::new(Cursor::new(Vec::new())).unwrap();
        w.write_all(data).unwrap();
        let mut r = w.finish().unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn round_trips_at_chunk_edges() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            round_trip(&data);
        }
    }

    #[test]
    fn file_holds_no_plaintext() {
        let data = b"jan.jansen@example.nl;0612345678\n".repeat(5000);
        let file = spool(&data);
        assert!(!file.windows(10).any(|w| w == b"jan.jansen"));
    }

    fn read_back(file: Vec<u8>, key_from: SpoolWriter<Cursor<Vec<u8>>>) -> io::Result<Vec<u8>> {
        let mut r = SpoolReader {
            file: Cursor::new(file),
            key: key_from.key,
            chunk: Vec::new(),
            pos: 0,
            counter: 0,
            done: false,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).map(|_| out)
    }

    #[test]
    fn tampering_truncation_and_reordering_are_refused() {
        let data: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| i as u8).collect();
        let mut w = SpoolWriter::new(Cursor::new(Vec::new())).unwrap();
        w.write_all(&data).unwrap();
        let key = w.key.clone();
        let file = w.finish().unwrap().file.into_inner();
        let with_key = |f: Vec<u8>| {
            let mut w = SpoolWriter::new(Cursor::new(Vec::new())).unwrap();
            w.key = key.clone();
            read_back(f, w)
        };
        assert_eq!(with_key(file.clone()).unwrap(), data);
        let full = CHUNK + TAG_LEN;
        // One flipped bit.
        let mut f = file.clone();
        f[10] ^= 1;
        assert_eq!(with_key(f).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // Cut at a chunk boundary: the last full chunk is not marked last.
        assert_eq!(
            with_key(file[..2 * full].to_vec()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert!(with_key(file[..full].to_vec()).is_err());
        // Two chunks swapped.
        let mut f = file[full..2 * full].to_vec();
        f.extend_from_slice(&file[..full]);
        f.extend_from_slice(&file[2 * full..]);
        assert!(with_key(f).is_err());
    }
}
