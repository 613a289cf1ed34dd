//! Unambiguous byte encodings for associated data and MAC inputs.

/// Appends `u32 BE length || bytes`, so that adjacent fields can never run into each other
/// (`"ab" + "c"` and `"a" + "bc"` encode differently).
pub(crate) fn put_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    // Fields here are names, labels and column values; saturating keeps this total without a
    // panic path, and no field near 4 GiB can reach it (AES-GCM and callers' limits are far lower).
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefix_is_big_endian_u32() {
        let mut out = Vec::new();
        put_len_prefixed(&mut out, b"ab");
        put_len_prefixed(&mut out, b"");
        assert_eq!(out, [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]);
    }
}
