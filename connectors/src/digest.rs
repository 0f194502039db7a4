//! The two forms SHA-256 digests take here: lower-case hex (checksums, batch keys) and the
//! first 8 bytes as a 64-bit number (record identities, positions in a listing).

/// `bytes` as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 8 bytes of a SHA-256 digest, as a number.
pub(crate) fn short(digest: &[u8]) -> u64 {
    u64::from_le_bytes(
        digest[..8]
            .try_into()
            .expect("a SHA-256 digest has 8 bytes"),
    )
}
