//! The sensitive-data guard on CRM writes: payment card numbers, IBANs and national id numbers
//! (see `crate::sensitive`) are refused with a clear 422 naming the field and the kind, or, if
//! the organisation chose so, stored with a flag on the record. Values are never echoed or
//! logged; the flag holds kinds only.

use crate::db::TenantTx;
use serde_json::{Map, Value};

use crate::sensitive::{SensitiveKind, scan};
use crate::{Error, Kluis, Result};

/// `block` unless the organisation switched to `flag`.
pub async fn mode(tx: &mut TenantTx) -> Result<String> {
    Ok(tx
        .sensitive_data_mode()
        .await?
        .unwrap_or_else(|| "block".into()))
}

pub(super) fn parse_flags(stored: Option<&str>) -> Vec<SensitiveKind> {
    stored
        .unwrap_or_default()
        .split(',')
        .filter_map(|k| SensitiveKind::ALL.into_iter().find(|s| s.as_str() == k))
        .collect()
}

impl Kluis {
    /// Checks the `written` fields of `fields`; returns the flags for the whole record.
    pub(super) async fn guard<'a>(
        &self,
        tx: &mut TenantTx,
        fields: &Map<String, Value>,
        written: impl Iterator<Item = &'a String>,
    ) -> Result<Option<String>> {
        let block = mode(tx).await? == "block";
        scan_fields(block, fields, written)
    }
}

/// Scans written fields: with `block`, the first finding is a 422 naming the field and the
/// kind (never the value); otherwise the kinds found, to flag the record with.
pub(super) fn scan_fields<'a>(
    block: bool,
    fields: &Map<String, Value>,
    written: impl Iterator<Item = &'a String>,
) -> Result<Option<String>> {
    if block {
        for k in written {
            let Some(v) = fields.get(k).and_then(Value::as_str) else {
                continue;
            };
            if let Some(found) = scan(v).first() {
                return Err(Error::validation(
                    &format!("fields.{k}"),
                    "sensitive_data",
                    format!(
                        "this looks like a {}: your organisation does not allow storing it",
                        describe(found.kind)
                    ),
                ));
            }
        }
    }
    let mut kinds: Vec<SensitiveKind> = fields
        .values()
        .filter_map(Value::as_str)
        .flat_map(|v| scan(v).into_iter().map(|f| f.kind))
        .collect();
    kinds.sort();
    kinds.dedup();
    Ok((!kinds.is_empty()).then(|| {
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }))
}

fn describe(k: SensitiveKind) -> &'static str {
    match k {
        SensitiveKind::PaymentCard => "payment card number",
        SensitiveKind::Iban => "bank account number (IBAN)",
        SensitiveKind::Bsn => "Dutch citizen service number (BSN)",
        SensitiveKind::BelgianNationalNumber => "Belgian national register number",
    }
}
