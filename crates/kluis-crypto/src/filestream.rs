//! Sealed file storage: a file's bytes as a sequence of AES-256-GCM chunks under the STREAM
//! construction (Hoang, Reyhanitabar, Rogaway and Vizár), from RustCrypto's `aead-stream`
//! (`StreamBE32`: 7-byte nonce prefix, 32-bit big-endian chunk counter and a last-chunk flag in
//! the nonce) over `aes-gcm`.
//!
//! - Every file version has its own random 256-bit [`FileKey`]; the caller stores it sealed under
//!   the tenant's data key (so KEK rotation, customer-key revocation and tenant shredding reach
//!   files as they reach every other value).
//! - Every chunk's associated data binds the tenant, the file id and the version
//!   ([`FileBinding`]); the STREAM counter binds its position and the flag the end. A chunk
//!   copied into another file or version, moved to another position, a dropped chunk or a file
//!   cut short fails to open.
//! - Constant memory: one chunk of [`CHUNK`] bytes at a time, both ways.
//!
//! Stored format:
//!
//! ```text
//! [0..4]   magic "KLF1"
//! [4..11]  STREAM nonce prefix (random)
//! [11..]   chunks: CHUNK bytes of ciphertext || 16-byte tag, the last one shorter (possibly
//!          only its tag), so the length alone tells where the last chunk is
//! ```

use aead_stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::{Aes256Gcm, KeyInit};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::CryptoError;
use crate::token::try_random_bytes;

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes a chunk adds (the GCM tag).
pub const TAG_LEN: usize = 16;
/// Stored bytes of a full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG_LEN;
const MAGIC: &[u8; 4] = b"KLF1";
const PREFIX_LEN: usize = 7;
/// Bytes before the first chunk.
pub const HEADER_LEN: usize = MAGIC.len() + PREFIX_LEN;
const AAD_LABEL: &[u8] = b"kluis.file.v1";

/// The key of one file version. Wiped on drop; `Debug` shows nothing.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FileKey([u8; 32]);

impl FileKey {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(FileKey(try_random_bytes()?))
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        Ok(FileKey(
            bytes
                .try_into()
                .map_err(|_| CryptoError::InvalidKeyLength)?,
        ))
    }

    /// The raw key, to be sealed under a data key; never log or store it as is.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Result<Aes256Gcm, CryptoError> {
        Aes256Gcm::new_from_slice(&self.0).map_err(|_| CryptoError::InvalidKeyLength)
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(..)")
    }
}

/// Where a sealed file belongs: every chunk is bound to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileBinding {
    pub tenant: [u8; 16],
    pub file: [u8; 16],
    pub version: u32,
}

impl FileBinding {
    fn aad(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(AAD_LABEL.len() + 36);
        a.extend_from_slice(AAD_LABEL);
        a.extend_from_slice(&self.tenant);
        a.extend_from_slice(&self.file);
        a.extend_from_slice(&self.version.to_be_bytes());
        a
    }
}

/// Stored size of a file of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    let chunks = plain / CHUNK as u64 + 1;
    HEADER_LEN as u64 + plain + chunks * TAG_LEN as u64
}

/// Seals a file as it streams in.
pub struct Sealer {
    enc: Option<EncryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    buf: Vec<u8>,
    len: u64,
}

impl Sealer {
    /// A sealer and the header to store before its chunks.
    pub fn new(
        key: &FileKey,
        binding: &FileBinding,
    ) -> Result<(Self, [u8; HEADER_LEN]), CryptoError> {
        let prefix: [u8; PREFIX_LEN] = try_random_bytes()?;
        let enc = EncryptorBE32::from_aead(key.cipher()?, &prefix.into());
        let mut header = [0u8; HEADER_LEN];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        header[MAGIC.len()..].copy_from_slice(&prefix);
        Ok((
            Sealer {
                enc: Some(enc),
                aad: binding.aad(),
                buf: Vec::with_capacity(SEALED_CHUNK),
                len: 0,
            },
            header,
        ))
    }

    /// Plaintext bytes taken so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes plaintext; appends every chunk it completes, sealed, to `out`.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.len += data.len() as u64;
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                // A full chunk is sealed only once more data arrives: the last chunk must be
                // the short one.
                let enc = self.enc.as_mut().ok_or(CryptoError::Encrypt)?;
                enc.encrypt_next_in_place(&self.aad, &mut self.buf)
                    .map_err(|_| CryptoError::Encrypt)?;
                out.extend_from_slice(&self.buf);
                self.buf.clear();
            }
            let n = data.len().min(CHUNK - self.buf.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        Ok(())
    }

    /// Seals what is left as the last chunk(s) and appends them to `out`; returns the
    /// plaintext length.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<u64, CryptoError> {
        let mut enc = self.enc.take().ok_or(CryptoError::Encrypt)?;
        if self.buf.len() == CHUNK {
            enc.encrypt_next_in_place(&self.aad, &mut self.buf)
                .map_err(|_| CryptoError::Encrypt)?;
            out.extend_from_slice(&self.buf);
            self.buf.clear();
        }
        enc.encrypt_last_in_place(&self.aad, &mut self.buf)
            .map_err(|_| CryptoError::Encrypt)?;
        out.extend_from_slice(&self.buf);
        self.buf.zeroize();
        Ok(self.len)
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        // Plaintext of an unfinished chunk.
        self.buf.zeroize();
    }
}

/// Opens a sealed file chunk by chunk. The caller reads [`Opener::next_len`] stored bytes and
/// hands them to [`Opener::open_next`]; any tampering, truncation, reordering or a chunk from
/// another file is [`CryptoError::Decrypt`].
pub struct Opener {
    dec: Option<DecryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    remaining: u64,
}

impl Opener {
    /// `header`: the first [`HEADER_LEN`] stored bytes; `stored_len`: the stored size.
    pub fn new(
        key: &FileKey,
        binding: &FileBinding,
        header: &[u8],
        stored_len: u64,
    ) -> Result<Self, CryptoError> {
        if header.len() != HEADER_LEN || &header[..MAGIC.len()] != MAGIC {
            return Err(CryptoError::MalformedCiphertext);
        }
        let body = stored_len
            .checked_sub(HEADER_LEN as u64)
            .ok_or(CryptoError::MalformedCiphertext)?;
        // The last chunk is shorter than a full one and holds at least its tag.
        if body % (SEALED_CHUNK as u64) < TAG_LEN as u64 {
            return Err(CryptoError::Decrypt);
        }
        let prefix: [u8; PREFIX_LEN] = header[MAGIC.len()..]
            .try_into()
            .map_err(|_| CryptoError::MalformedCiphertext)?;
        Ok(Opener {
            dec: Some(DecryptorBE32::from_aead(key.cipher()?, &prefix.into())),
            aad: binding.aad(),
            remaining: body,
        })
    }

    /// Stored bytes of the next chunk; 0 when every chunk has been opened.
    pub fn next_len(&self) -> usize {
        if self.dec.is_none() {
            return 0;
        }
        usize::try_from(self.remaining.min(SEALED_CHUNK as u64)).unwrap_or(SEALED_CHUNK)
    }

    /// Opens the next chunk in place: `buf` holds exactly [`Opener::next_len`] stored bytes and
    /// is left holding the plaintext (wiped on failure).
    pub fn open_next(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let want = self.next_len();
        if want == 0 || buf.len() != want {
            return Err(CryptoError::Decrypt);
        }
        self.remaining -= want as u64;
        let last = self.remaining == 0;
        let r = if last {
            let dec = self.dec.take().ok_or(CryptoError::Decrypt)?;
            dec.decrypt_last_in_place(&self.aad, buf)
        } else {
            let dec = self.dec.as_mut().ok_or(CryptoError::Decrypt)?;
            dec.decrypt_next_in_place(&self.aad, buf)
        };
        r.map_err(|_| {
            buf.zeroize();
            buf.clear();
            self.dec = None;
            CryptoError::Decrypt
        })
    }

    /// True once the last chunk has opened.
    pub fn is_done(&self) -> bool {
        self.dec.is_none() && self.remaining == 0
    }
}

/// Reads a whole sealed file (tests, small files).
pub fn open_all(
    key: &FileKey,
    binding: &FileBinding,
    stored: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let header = stored
        .get(..HEADER_LEN)
        .ok_or(CryptoError::MalformedCiphertext)?;
    let mut o = Opener::new(key, binding, header, stored.len() as u64)?;
    let mut pos = HEADER_LEN;
    let mut out = Vec::new();
    while o.next_len() > 0 {
        let n = o.next_len();
        let mut buf = stored
            .get(pos..pos + n)
            .ok_or(CryptoError::Decrypt)?
            .to_vec();
        o.open_next(&mut buf)?;
        out.extend_from_slice(&buf);
        pos += n;
    }
    if !o.is_done() || pos != stored.len() {
        return Err(CryptoError::Decrypt);
    }
    Ok(out)
}

/// Seals a whole file (tests, small files).
pub fn seal_all(
    key: &FileKey,
    binding: &FileBinding,
    plain: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let (mut s, header) = Sealer::new(key, binding)?;
    let mut out = header.to_vec();
    s.update(plain, &mut out)?;
    s.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(version: u32) -> FileBinding {
        FileBinding {
            tenant: [1; 16],
            file: [2; 16],
            version,
        }
    }

    #[test]
    fn round_trips_at_chunk_edges_and_sizes_match() {
        let key = FileKey::generate().unwrap();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            // Uneven pieces cross chunk boundaries.
            let (mut s, header) = Sealer::new(&key, &binding(1)).unwrap();
            let mut out = header.to_vec();
            for part in data.chunks(7777) {
                s.update(part, &mut out).unwrap();
            }
            assert_eq!(s.finish(&mut out).unwrap(), n as u64);
            assert_eq!(out.len() as u64, sealed_len(n as u64), "n = {n}");
            assert_eq!(open_all(&key, &binding(1), &out).unwrap(), data);
        }
    }

    #[test]
    fn stored_bytes_hold_no_plaintext() {
        let key = FileKey::generate().unwrap();
        let data = b"KANARIE-geheim-contract Jan Jansen\n".repeat(5000);
        let out = seal_all(&key, &binding(1), &data).unwrap();
        assert!(!out.windows(7).any(|w| w == b"KANARIE"));
    }

    #[test]
    fn moved_reordered_cut_or_altered_chunks_fail() {
        let key = FileKey::generate().unwrap();
        let data: Vec<u8> = (0..(3 * CHUNK + 100)).map(|i| i as u8).collect();
        let out = seal_all(&key, &binding(1), &data).unwrap();
        assert_eq!(open_all(&key, &binding(1), &out).unwrap(), data);
        let c = |i: usize| HEADER_LEN + i * SEALED_CHUNK..HEADER_LEN + (i + 1) * SEALED_CHUNK;
        // Another version or file or tenant: the associated data differs.
        assert!(open_all(&key, &binding(2), &out).is_err());
        let other_file = FileBinding {
            file: [3; 16],
            ..binding(1)
        };
        assert!(open_all(&key, &other_file, &out).is_err());
        let other_tenant = FileBinding {
            tenant: [9; 16],
            ..binding(1)
        };
        assert!(open_all(&key, &other_tenant, &out).is_err());
        // Wrong key.
        assert!(open_all(&FileKey::generate().unwrap(), &binding(1), &out).is_err());
        // A bit flipped.
        let mut f = out.clone();
        f[HEADER_LEN + 10] ^= 1;
        assert!(open_all(&key, &binding(1), &f).is_err());
        // Two chunks swapped (another position).
        let mut f = out.clone();
        let (a, b) = (out[c(0)].to_vec(), out[c(1)].to_vec());
        f[c(0)].copy_from_slice(&b);
        f[c(1)].copy_from_slice(&a);
        assert!(open_all(&key, &binding(1), &f).is_err());
        // A chunk dropped; the file cut at a chunk boundary; cut inside a chunk.
        let mut f = out[..c(1).start].to_vec();
        f.extend_from_slice(&out[c(1).end..]);
        assert!(open_all(&key, &binding(1), &f).is_err());
        assert!(open_all(&key, &binding(1), &out[..c(2).end]).is_err());
        assert!(open_all(&key, &binding(1), &out[..c(2).end + 20]).is_err());
        // A chunk of another file of the same tenant, sealed under the same key at the same
        // position (e.g. a version copy), still fails: the file id is in the associated data.
        let theirs = seal_all(&key, &other_file, &data).unwrap();
        let mut f = out.clone();
        f[c(1)].copy_from_slice(&theirs[c(1)]);
        assert!(open_all(&key, &binding(1), &f).is_err());
    }
}
