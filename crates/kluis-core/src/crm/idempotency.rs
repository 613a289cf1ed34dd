//! Idempotency-Key of a create: a retried request gets the first answer, a reused key with
//! another input is refused. Independent of the transport.

use super::*;

/// Idempotency-Key of a create, as the client sent it. What request the key stands for is the
/// core's business (the operation and its input, see [`request_hash`]), not the transport's:
/// an HTTP handler, the CLI or a later queue consumer pass only the key.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
}

/// The request a key was first used with: the operation and the input, so that the same key
/// with a different body (or for another type) is refused instead of replayed.
pub(super) fn request_hash(t: ObjectType, input: &RecordInput) -> Result<[u8; 32]> {
    let body = serde_json::to_vec(input).map_err(|_| Error::internal("encoding"))?;
    let mut h = Sha256::new();
    for part in [b"create".as_slice(), t.as_str().as_bytes(), &body] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    Ok(h.finalize().into())
}

impl Idempotency {
    /// Keys are 1..=255 visible ASCII characters.
    pub fn new(key: &str) -> Result<Idempotency> {
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::new(
                ErrorKind::BadRequest,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Idempotency {
            key: key.to_owned(),
        })
    }

    pub(super) fn key_hash(&self, actor: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [actor.as_bytes(), self.key.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }
}

/// Idempotency outcomes are kept this long.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

pub(crate) fn idem_ctx(key_hash: &[u8; 32]) -> Uuid {
    let mut b = [0u8; 16];
    b.copy_from_slice(&key_hash[..16]);
    Uuid::from_bytes(b)
}

impl Kluis {
    /// The stored outcome of an earlier request with the same Idempotency-Key, if any.
    pub(super) async fn replay(
        &self,
        tx: &mut TenantTx,
        keys: &TenantKeys,
        key_hash: &[u8; 32],
        request: &[u8; 32],
    ) -> Result<Option<Record>> {
        let Some(row) = tx.idempotency(key_hash).await? else {
            return Ok(None);
        };
        if row.created_at < self.now() - IDEMPOTENCY_TTL_MS {
            // Expired but not purged yet: the key is free again.
            tx.delete_idempotency(key_hash).await?;
            return Ok(None);
        }
        if row.request_hash != *request {
            return Err(Error::new(
                ErrorKind::Validation,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            ));
        }
        let body = keys.open(
            "idempotency_keys",
            "response",
            idem_ctx(key_hash),
            &row.response,
        )?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|_| Error::internal("stored response unreadable"))
    }
}
