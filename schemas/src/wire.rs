//! Confluent's wire format: byte 0 is the magic byte 0, bytes 1–4 the schema id (big-endian),
//! then the Avro binary datum. Every Kafka client with a Schema Registry serde reads it.

/// The magic byte that opens every framed message.
pub const MAGIC: u8 = 0;

/// Length of the frame header (magic byte + schema id).
pub const HEADER_LEN: usize = 5;

/// Why bytes are not a Confluent-framed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header.
    #[error("message of {0} bytes is shorter than the 5-byte Confluent header")]
    TooShort(usize),
    /// The first byte is not 0.
    #[error("unknown magic byte {0} (Confluent framing starts with 0)")]
    BadMagic(u8),
}

/// Appends the header for `schema_id` to `out`; the datum follows it.
pub fn write_header(out: &mut Vec<u8>, schema_id: u32) {
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
}

/// Splits a framed message into its schema id and Avro datum.
pub fn split(message: &[u8]) -> Result<(u32, &[u8]), WireError> {
    match message {
        [MAGIC, a, b, c, d, datum @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), datum)),
        [magic, _, _, _, _, ..] => Err(WireError::BadMagic(*magic)),
        short => Err(WireError::TooShort(short.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Split<'a> = Result<(u32, &'a [u8]), WireError>;

    #[test]
    fn frames_and_splits() {
        let cases: [(&[u8], Split<'_>); 5] = [
            (&[0, 0, 0, 0, 7, 2, 4], Ok((7, &[2, 4]))),
            (&[0, 0, 1, 0, 0], Ok((65536, &[]))),
            (&[0, 0, 0], Err(WireError::TooShort(3))),
            (&[], Err(WireError::TooShort(0))),
            (&[1, 0, 0, 0, 7, 2], Err(WireError::BadMagic(1))),
        ];
        for (input, expected) in cases {
            assert_eq!(split(input), expected, "{input:?}");
        }
        let mut out = Vec::new();
        write_header(&mut out, 0x0102_0304);
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }
}
