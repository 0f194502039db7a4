//! Serde adapters for the contract's Avro logical types, used with `#[serde(with = "…")]` on
//! the typed records in [`crate::records`].
//!
//! Each adapter writes two forms, chosen by the (de)serializer's
//! [`is_human_readable`](serde::Serializer::is_human_readable), except inside the codec's
//! `avro_binary` scope, which always takes the Avro form (serde_avro_fast calls itself
//! human-readable, serde's default):
//!
//! | logical type | Avro (not human-readable) | JSON and other human-readable formats |
//! |---|---|---|
//! | `timestamp-millis` ([`timestamp_millis`]) | `long` milliseconds since the Unix epoch | RFC 3339 in UTC, millisecond precision: `"2025-03-01T00:30:00.000Z"` |
//! | `date` ([`date`]) | `int` days since 1970-01-01 | ISO 8601 calendar date: `"2025-03-01"` |
//! | `decimal(24,6)` ([`decimal_24_6`]), `decimal(20,2)` ([`decimal_20_2`]) | `bytes`: big-endian two's complement of the unscaled integer | string with exactly the schema's scale: `"1234.500000"` |
//! | plain `bytes` ([`bytes`]) | `bytes` | standard padded base64 |
//!
//! Decimals are exact: a value is rescaled to the schema's scale when written and read, and
//! one that would lose digits or exceed the schema's precision is an error, never rounded
//! (use [`DecimalShape::round`] to round on purpose first). Timestamps have millisecond
//! precision, like the Avro type: finer parts are truncated when a value is written or read,
//! so a value read back equals the value written once it went through either form.
//!
//! Readers accept more than writers produce: binary decimals and bytes as Avro `bytes` or as a
//! sequence of byte values (apache-avro's `from_value` path presents them either way), decimal
//! text or JSON integers for decimals, any RFC 3339 offset for timestamps, and epoch integers
//! in both forms. JSON floating-point numbers are refused for decimals: they are not exact.

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serializer;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

thread_local! {
    static AVRO_BINARY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every adapter here in its Avro form, whatever the (de)serializer says of
/// itself. serde_avro_fast keeps serde's default `is_human_readable() == true`, so the codec
/// marks its calls instead; apache-avro's readers and writers are built non-human-readable.
pub(crate) fn avro_binary<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous mode even if `f` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            AVRO_BINARY.set(self.0);
        }
    }
    let _restore = Restore(AVRO_BINARY.replace(true));
    f()
}

/// Whether an adapter should use its textual form: only outside [`avro_binary`], for a
/// human-readable format.
fn textual(human_readable: bool) -> bool {
    human_readable && !AVRO_BINARY.get()
}

/// Why a value does not fit an Avro logical type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogicalError {
    /// The decimal has more fractional digits than the schema's scale (and they are not zeros).
    #[error("decimal {value} has more than {scale} fractional digits")]
    Inexact {
        /// The value, as text.
        value: String,
        /// The schema's scale.
        scale: u32,
    },
    /// The decimal has more digits than the schema's precision.
    #[error("decimal {value} exceeds precision {precision} at scale {scale}")]
    Overflow {
        /// The value, as text.
        value: String,
        /// The schema's precision.
        precision: u32,
        /// The schema's scale.
        scale: u32,
    },
    /// The text is not a plain decimal number (`-?digits[.digits]`).
    #[error("`{0}` is not a decimal number: write digits with an optional sign and point")]
    DecimalSyntax(String),
    /// Avro decimal bytes were empty or encode a number too large for this crate.
    #[error("decimal bytes {0}")]
    DecimalBytes(&'static str),
    /// A timestamp or date is outside the representable range.
    #[error("{0} is out of range")]
    OutOfRange(String),
    /// The text is not a valid RFC 3339 timestamp or ISO 8601 date.
    #[error("`{value}` is not a valid {expected}")]
    TimeSyntax {
        /// The offending text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The text is not valid base64.
    #[error("invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
}

impl LogicalError {
    /// A stable, bounded code for metric labels and quarantine records.
    pub fn code(&self) -> &'static str {
        match self {
            LogicalError::Inexact { .. } => "decimal_inexact",
            LogicalError::Overflow { .. } => "decimal_overflow",
            LogicalError::DecimalSyntax(_) => "decimal_syntax",
            LogicalError::DecimalBytes(_) => "decimal_bytes",
            LogicalError::OutOfRange(_) => "time_out_of_range",
            LogicalError::TimeSyntax { .. } => "time_syntax",
            LogicalError::Base64(_) => "base64",
        }
    }
}

/// The precision and scale of an Avro `decimal`. The contract uses exactly two shapes:
/// [`DecimalShape::QUANTITY`] and [`DecimalShape::MONEY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DecimalShape {
    precision: u32,
    scale: u32,
}

impl DecimalShape {
    /// `decimal(24,6)`: physical quantities and conversion coefficients.
    pub const QUANTITY: DecimalShape = DecimalShape {
        precision: 24,
        scale: 6,
    };
    /// `decimal(20,2)`: amounts of money in yuan, to the fen.
    pub const MONEY: DecimalShape = DecimalShape {
        precision: 20,
        scale: 2,
    };

    /// Total number of decimal digits.
    pub const fn precision(self) -> u32 {
        self.precision
    }

    /// Number of fractional digits.
    pub const fn scale(self) -> u32 {
        self.scale
    }

    /// The unscaled integer of `value` at this shape's scale; an error if that would drop a
    /// non-zero digit or exceed the precision.
    pub fn unscaled(self, value: Decimal) -> Result<i128, LogicalError> {
        let mantissa = value.mantissa();
        let scale = value.scale();
        let unscaled = if scale <= self.scale {
            mantissa
                .checked_mul(10i128.pow(self.scale - scale))
                .ok_or_else(|| self.overflow(value))?
        } else {
            let divisor = 10i128.pow(scale - self.scale);
            if mantissa % divisor != 0 {
                return Err(LogicalError::Inexact {
                    value: value.to_string(),
                    scale: self.scale,
                });
            }
            mantissa / divisor
        };
        if !self.fits(unscaled) {
            return Err(self.overflow(value));
        }
        Ok(unscaled)
    }

    /// `value` at exactly this shape's scale (e.g. `1.5` → `1.500000`), checked like
    /// [`DecimalShape::unscaled`].
    pub fn normalise(self, value: Decimal) -> Result<Decimal, LogicalError> {
        let unscaled = self.unscaled(value)?;
        self.decimal_of(unscaled)
    }

    /// `value` rounded half away from zero (四舍五入) to this shape's scale; an error only if
    /// it exceeds the precision. For computed values such as unit conversions.
    pub fn round(self, value: Decimal) -> Result<Decimal, LogicalError> {
        self.normalise(
            value.round_dp_with_strategy(self.scale, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    /// The Avro `bytes` of `value`: the shortest big-endian two's complement of its unscaled
    /// integer (as Java's `BigInteger.toByteArray`).
    pub fn encode_avro_bytes(self, value: Decimal) -> Result<DecimalBytes, LogicalError> {
        let unscaled = self.unscaled(value)?;
        let bytes = unscaled.to_be_bytes();
        let mut start = 0;
        while start < bytes.len() - 1 {
            let redundant = (bytes[start] == 0x00 && bytes[start + 1] & 0x80 == 0)
                || (bytes[start] == 0xFF && bytes[start + 1] & 0x80 != 0);
            if !redundant {
                break;
            }
            start += 1;
        }
        Ok(DecimalBytes { bytes, start })
    }

    /// The value of Avro decimal `bytes` at this shape's scale. Redundant sign bytes are
    /// accepted; the precision is not checked (that is the writer's duty).
    pub fn decode_avro_bytes(self, bytes: &[u8]) -> Result<Decimal, LogicalError> {
        let Some(&first) = bytes.first() else {
            return Err(LogicalError::DecimalBytes("are empty"));
        };
        let sign_byte = if first & 0x80 != 0 { 0xFF } else { 0x00 };
        let significant = if bytes.len() > 16 {
            let (extra, rest) = bytes.split_at(bytes.len() - 16);
            if extra.iter().any(|&b| b != sign_byte) || (rest[0] & 0x80 != 0) != (sign_byte != 0) {
                return Err(LogicalError::DecimalBytes(
                    "encode a number beyond 128 bits",
                ));
            }
            rest
        } else {
            bytes
        };
        let mut buf = [sign_byte; 16];
        buf[16 - significant.len()..].copy_from_slice(significant);
        self.decimal_of(i128::from_be_bytes(buf))
    }

    /// Parses plain decimal text (`-?digits[.digits]`) exactly at this shape's scale.
    pub fn parse(self, text: &str) -> Result<Decimal, LogicalError> {
        let syntax = || LogicalError::DecimalSyntax(text.to_owned());
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) || frac_part.is_some_and(|f| !all_digits(f)) {
            return Err(syntax());
        }
        let frac = frac_part.unwrap_or("");
        let scale = self.scale as usize;
        if frac.len() > scale && frac.bytes().skip(scale).any(|b| b != b'0') {
            return Err(LogicalError::Inexact {
                value: text.to_owned(),
                scale: self.scale,
            });
        }
        let overflow = || LogicalError::Overflow {
            value: text.to_owned(),
            precision: self.precision,
            scale: self.scale,
        };
        let int_part = int_part.trim_start_matches('0');
        if int_part.len() > (self.precision - self.scale) as usize {
            return Err(overflow());
        }
        let mut unscaled: i128 = 0;
        let frac_digits = frac.bytes().chain(std::iter::repeat(b'0')).take(scale);
        for b in int_part.bytes().chain(frac_digits) {
            unscaled = unscaled * 10 + i128::from(b - b'0');
        }
        if negative {
            unscaled = -unscaled;
        }
        if !self.fits(unscaled) {
            return Err(overflow());
        }
        self.decimal_of(unscaled)
    }

    fn decimal_of(self, unscaled: i128) -> Result<Decimal, LogicalError> {
        Decimal::try_from_i128_with_scale(unscaled, self.scale)
            .map_err(|_| LogicalError::DecimalBytes("encode a number beyond 96 bits"))
    }

    /// Whether `unscaled` has at most `precision` digits.
    fn fits(self, unscaled: i128) -> bool {
        unscaled.unsigned_abs() < 10u128.pow(self.precision)
    }

    fn overflow(self, value: Decimal) -> LogicalError {
        LogicalError::Overflow {
            value: value.to_string(),
            precision: self.precision,
            scale: self.scale,
        }
    }

    fn serialize<S: Serializer>(self, value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        if textual(serializer.is_human_readable()) {
            let normalised = self.normalise(*value).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&normalised.to_string())
        } else {
            let bytes = self
                .encode_avro_bytes(*value)
                .map_err(serde::ser::Error::custom)?;
            serializer.serialize_bytes(&bytes)
        }
    }

    fn deserialize<'de, D: Deserializer<'de>>(self, deserializer: D) -> Result<Decimal, D::Error> {
        let visitor = DecimalVisitor(self);
        if textual(deserializer.is_human_readable()) {
            deserializer.deserialize_any(visitor)
        } else {
            deserializer.deserialize_bytes(visitor)
        }
    }
}

/// The Avro `bytes` of a decimal, on the stack (a 128-bit unscaled value needs at most 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecimalBytes {
    bytes: [u8; 16],
    start: usize,
}

impl std::ops::Deref for DecimalBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

struct DecimalVisitor(DecimalShape);

impl<'de> Visitor<'de> for DecimalVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a decimal({},{}) as decimal text such as \"12.5\" or as Avro decimal bytes",
            self.0.precision, self.0.scale
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        self.0.parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        self.0.normalise(Decimal::from(v)).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        self.0.normalise(Decimal::from(v)).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        Err(E::custom(format_args!(
            "decimal {v} given as a floating-point number: write it as a string such as \"{v}\" so that it stays exact"
        )))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Decimal, E> {
        self.0.decode_avro_bytes(v).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Decimal, A::Error> {
        let bytes = collect_bytes(seq)?;
        self.0.decode_avro_bytes(&bytes).map_err(de::Error::custom)
    }
}

fn collect_bytes<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Vec<u8>, A::Error> {
    let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
    while let Some(b) = seq.next_element::<u8>()? {
        bytes.push(b);
    }
    Ok(bytes)
}

/// Defines a `with` module for one decimal shape, with an `option` submodule.
macro_rules! decimal_module {
    ($(#[$doc:meta])* $module:ident, $shape:expr) => {
        $(#[$doc])*
        pub mod $module {
            use rust_decimal::Decimal;
            use serde::{Deserializer, Serializer};

            use super::DecimalShape;

            /// The shape this module writes.
            pub const SHAPE: DecimalShape = $shape;

            /// Writes `value` as Avro decimal bytes, or as decimal text at the shape's scale.
            pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
                SHAPE.serialize(value, serializer)
            }

            /// Reads a decimal at the shape's scale.
            pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
                SHAPE.deserialize(deserializer)
            }

            /// The same for `Option<Decimal>`, the field type of `["null", decimal]` unions.
            pub mod option {
                use rust_decimal::Decimal;
                use serde::{Deserialize, Deserializer, Serialize, Serializer};

                use super::SHAPE;

                struct Wrap<'a>(&'a Decimal);

                impl Serialize for Wrap<'_> {
                    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                        SHAPE.serialize(self.0, serializer)
                    }
                }

                struct Own(Decimal);

                impl<'de> Deserialize<'de> for Own {
                    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                        SHAPE.deserialize(deserializer).map(Own)
                    }
                }

                /// Writes `None` as null and `Some` like the non-optional form.
                pub fn serialize<S: Serializer>(
                    value: &Option<Decimal>,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    match value {
                        Some(v) => serializer.serialize_some(&Wrap(v)),
                        None => serializer.serialize_none(),
                    }
                }

                /// Reads null as `None`.
                pub fn deserialize<'de, D: Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<Option<Decimal>, D::Error> {
                    Ok(Option::<Own>::deserialize(deserializer)?.map(|o| o.0))
                }
            }
        }
    };
}

decimal_module!(
    /// `{"type": "bytes", "logicalType": "decimal", "precision": 24, "scale": 6}` ↔
    /// [`Decimal`]: physical quantities ([`DecimalShape::QUANTITY`]).
    decimal_24_6,
    DecimalShape::QUANTITY
);

decimal_module!(
    /// `{"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 2}` ↔
    /// [`Decimal`]: money in yuan ([`DecimalShape::MONEY`]).
    decimal_20_2,
    DecimalShape::MONEY
);

/// Defines the `option` submodule of a logical type whose parent module has `serialize` and
/// `deserialize` over `$ty`.
macro_rules! option_module {
    ($ty:ty) => {
        /// The same for the `Option` field type of `["null", …]` unions.
        pub mod option {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            struct Wrap<'a>(&'a $ty);

            impl Serialize for Wrap<'_> {
                fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    super::serialize(self.0, serializer)
                }
            }

            struct Own($ty);

            impl<'de> Deserialize<'de> for Own {
                fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    super::deserialize(deserializer).map(Own)
                }
            }

            /// Writes `None` as null and `Some` like the non-optional form.
            pub fn serialize<S: Serializer>(
                value: &Option<$ty>,
                serializer: S,
            ) -> Result<S::Ok, S::Error> {
                match value {
                    Some(v) => serializer.serialize_some(&Wrap(v)),
                    None => serializer.serialize_none(),
                }
            }

            /// Reads null as `None`.
            pub fn deserialize<'de, D: Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Option<$ty>, D::Error> {
                Ok(Option::<Own>::deserialize(deserializer)?.map(|o| o.0))
            }
        }
    };
}

/// `{"type": "long", "logicalType": "timestamp-millis"}` ↔ [`DateTime<Utc>`], millisecond
/// precision (finer parts are truncated).
pub mod timestamp_millis {
    use std::fmt;

    use chrono::{DateTime, Utc};
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    use super::LogicalError;

    /// `value` truncated to whole milliseconds, as every form of the contract stores it.
    pub fn truncate(value: DateTime<Utc>) -> DateTime<Utc> {
        from_millis(value.timestamp_millis()).unwrap_or(value)
    }

    /// The instant `millis` milliseconds after the Unix epoch.
    pub fn from_millis(millis: i64) -> Result<DateTime<Utc>, LogicalError> {
        DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| LogicalError::OutOfRange(format!("timestamp {millis} ms")))
    }

    /// Writes epoch milliseconds, or RFC 3339 text in UTC with milliseconds.
    pub fn serialize<S: Serializer>(
        value: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if super::textual(serializer.is_human_readable()) {
            serializer.serialize_str(&super::format_timestamp(*value))
        } else {
            serializer.serialize_i64(value.timestamp_millis())
        }
    }

    /// Reads epoch milliseconds, or RFC 3339 text with any offset.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        if super::textual(deserializer.is_human_readable()) {
            deserializer.deserialize_any(TimestampVisitor)
        } else {
            deserializer.deserialize_i64(TimestampVisitor)
        }
    }

    struct TimestampVisitor;

    impl Visitor<'_> for TimestampVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 timestamp or milliseconds since the Unix epoch")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            from_millis(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            let millis = i64::try_from(v)
                .map_err(|_| E::custom(LogicalError::OutOfRange(format!("timestamp {v} ms"))))?;
            self.visit_i64(millis)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            DateTime::parse_from_rfc3339(v)
                .map(|t| truncate(t.with_timezone(&Utc)))
                .map_err(|_| {
                    E::custom(LogicalError::TimeSyntax {
                        value: v.to_owned(),
                        expected: "RFC 3339 timestamp such as 2025-03-01T08:30:00+08:00",
                    })
                })
        }
    }

    option_module!(chrono::DateTime<chrono::Utc>);
}

/// A timestamp in the JSON form of `timestamp-millis` fields: RFC 3339 in UTC, milliseconds.
pub fn format_timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `{"type": "int", "logicalType": "date"}` ↔ [`NaiveDate`](chrono::NaiveDate).
pub mod date {
    use std::fmt;

    use chrono::{Datelike, NaiveDate};
    use serde::Serializer;
    use serde::de::{self, Deserializer, Visitor};

    use super::LogicalError;

    /// `NaiveDate::num_days_from_ce` of 1970-01-01.
    const EPOCH_DAYS_FROM_CE: i32 = 719_163;

    /// Days since 1970-01-01 of `value`, the Avro representation.
    pub fn to_epoch_days(value: NaiveDate) -> i32 {
        // chrono's range (±262,143 years) keeps this far from i32's limits.
        value.num_days_from_ce() - EPOCH_DAYS_FROM_CE
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_epoch_days(days: i64) -> Result<NaiveDate, LogicalError> {
        i32::try_from(days)
            .ok()
            .and_then(|d| d.checked_add(EPOCH_DAYS_FROM_CE))
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .ok_or_else(|| LogicalError::OutOfRange(format!("date {days} days after 1970-01-01")))
    }

    /// Writes days since the epoch, or `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(value: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
        if super::textual(serializer.is_human_readable()) {
            serializer.serialize_str(&value.format("%Y-%m-%d").to_string())
        } else {
            serializer.serialize_i32(to_epoch_days(*value))
        }
    }

    /// Reads days since the epoch, or `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
        if super::textual(deserializer.is_human_readable()) {
            deserializer.deserialize_any(DateVisitor)
        } else {
            deserializer.deserialize_i32(DateVisitor)
        }
    }

    struct DateVisitor;

    impl Visitor<'_> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date as YYYY-MM-DD or days since 1970-01-01")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            from_epoch_days(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            let days = i64::try_from(v)
                .map_err(|_| E::custom(LogicalError::OutOfRange(format!("date {v} days"))))?;
            self.visit_i64(days)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            // `%Y-%m-%d` alone would also take `+2025-3-1`; insist on the fixed ISO form.
            let well_formed = v.len() == 10
                && v.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            well_formed
                .then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
                .flatten()
                .ok_or_else(|| {
                    E::custom(LogicalError::TimeSyntax {
                        value: v.to_owned(),
                        expected: "date such as 2025-03-01",
                    })
                })
        }
    }

    option_module!(chrono::NaiveDate);
}

/// Avro `bytes` ↔ `Vec<u8>`: written with `serialize_bytes` (serde would otherwise write a
/// sequence, which Avro's `bytes` refuses), as base64 text in human-readable formats.
pub mod bytes {
    use std::fmt;

    use serde::Serializer;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    use super::{base64_decode, base64_encode, collect_bytes};

    /// Writes Avro `bytes`, or standard padded base64.
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        if super::textual(serializer.is_human_readable()) {
            serializer.serialize_str(&base64_encode(value))
        } else {
            serializer.serialize_bytes(value)
        }
    }

    /// Reads Avro `bytes`, a sequence of byte values, or base64 text.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        if super::textual(deserializer.is_human_readable()) {
            deserializer.deserialize_any(BytesVisitor)
        } else {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bytes, a sequence of byte values or base64 text")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            base64_decode(v).map_err(E::custom)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            collect_bytes(seq)
        }
    }

    option_module!(Vec<u8>);
}

fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn base64_decode(text: &str) -> Result<Vec<u8>, LogicalError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(LogicalError::Base64)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::NaiveDate;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "decimal_24_6")]
        quantity: Decimal,
        #[serde(default, with = "decimal_20_2::option")]
        money: Option<Decimal>,
        #[serde(with = "timestamp_millis")]
        at: DateTime<Utc>,
        #[serde(default, with = "timestamp_millis::option")]
        maybe_at: Option<DateTime<Utc>>,
        #[serde(with = "date")]
        on: NaiveDate,
        #[serde(default, with = "date::option")]
        maybe_on: Option<NaiveDate>,
        #[serde(default, with = "bytes::option")]
        raw: Option<Vec<u8>>,
    }

    const SCHEMA: &str = r#"{"type": "record", "name": "Sample", "fields": [
        {"name": "quantity", "type": {"type": "bytes", "logicalType": "decimal", "precision": 24, "scale": 6}},
        {"name": "money", "type": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 2}]},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "maybe_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "on", "type": {"type": "int", "logicalType": "date"}},
        {"name": "maybe_on", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "raw", "type": ["null", "bytes"]}
    ]}"#;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn sample() -> Sample {
        Sample {
            quantity: dec("-1234.5"),
            money: Some(dec("159800")),
            at: DateTime::parse_from_rfc3339("2025-03-01T08:30:15.250+08:00")
                .unwrap()
                .with_timezone(&Utc),
            maybe_at: None,
            on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            maybe_on: Some(NaiveDate::from_ymd_opt(1969, 12, 31).unwrap()),
            raw: Some(vec![0, 1, 2, 250, 251]),
        }
    }

    #[test]
    fn json_form_is_human_readable() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "quantity": "-1234.500000",
                "money": "159800.00",
                "at": "2025-03-01T00:30:15.250Z",
                "maybe_at": null,
                "on": "2025-03-01",
                "maybe_on": "1969-12-31",
                "raw": "AAEC+vs="
            })
        );
        assert_eq!(serde_json::from_value::<Sample>(json).unwrap(), sample());
    }

    #[test]
    fn avro_round_trip_through_the_schema_aware_serde() {
        let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
        let writer = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .human_readable(false)
            .build()
            .unwrap();
        let bytes = writer.write_ser_to_vec(&sample()).unwrap();
        let reader = apache_avro::reader::datum::GenericDatumReader::builder(&schema)
            .human_readable(false)
            .build()
            .unwrap();
        let back: Sample = reader.read_deser(&mut bytes.as_slice()).unwrap();
        assert_eq!(back, sample());
        // The generic Value path presents decimals and bytes differently; it must read too.
        let value = reader.read_value(&mut bytes.as_slice()).unwrap();
        let back: Sample = apache_avro::from_value(&value).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        let q = DecimalShape::QUANTITY;
        let cases: &[(&str, &[u8])] = &[
            ("0", &[0x00]),
            ("0.000001", &[0x01]),
            ("0.000127", &[0x7F]),
            ("0.000128", &[0x00, 0x80]),
            ("-0.000001", &[0xFF]),
            ("-0.000128", &[0x80]),
            ("-0.000129", &[0xFF, 0x7F]),
            ("1", &[0x0F, 0x42, 0x40]),
        ];
        for (text, bytes) in cases {
            assert_eq!(*q.encode_avro_bytes(dec(text)).unwrap(), **bytes, "{text}");
            assert_eq!(q.decode_avro_bytes(bytes).unwrap(), dec(text), "{text}");
        }
        // Redundant sign extension is read, beyond 16 bytes too.
        let mut long = vec![0xFF; 20];
        long.push(0x80);
        assert_eq!(q.decode_avro_bytes(&long).unwrap(), dec("-0.000128"));
        assert!(q.decode_avro_bytes(&[]).is_err());
        let mut too_big = vec![0x01];
        too_big.extend([0u8; 16]);
        assert!(q.decode_avro_bytes(&too_big).is_err());
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        let q = DecimalShape::QUANTITY;
        let m = DecimalShape::MONEY;
        assert_eq!(q.normalise(dec("1.5")).unwrap().to_string(), "1.500000");
        assert_eq!(
            q.normalise(dec("1.50000000")).unwrap().to_string(),
            "1.500000"
        );
        assert_eq!(
            q.unscaled(dec("1.0000001")).unwrap_err().code(),
            "decimal_inexact"
        );
        assert_eq!(
            m.unscaled(dec("0.001")).unwrap_err().code(),
            "decimal_inexact"
        );
        assert!(m.normalise(dec("999999999999999999.99")).is_ok());
        assert_eq!(
            m.normalise(dec("1000000000000000000")).unwrap_err().code(),
            "decimal_overflow"
        );
        assert_eq!(m.round(dec("2.345")).unwrap().to_string(), "2.35");
        assert_eq!(m.round(dec("-2.345")).unwrap().to_string(), "-2.35");

        assert_eq!(q.parse("0012.50").unwrap().to_string(), "12.500000");
        assert_eq!(q.parse("-0.1234560").unwrap().to_string(), "-0.123456");
        assert_eq!(
            q.parse("999999999999999999.999999").unwrap().to_string(),
            "999999999999999999.999999"
        );
        for (bad, code) in [
            ("1e5", "decimal_syntax"),
            ("1_000", "decimal_syntax"),
            ("+1", "decimal_syntax"),
            (".5", "decimal_syntax"),
            ("5.", "decimal_syntax"),
            ("", "decimal_syntax"),
            ("1,234.5", "decimal_syntax"),
            ("1.0000001", "decimal_inexact"),
            ("1000000000000000000", "decimal_overflow"),
        ] {
            assert_eq!(q.parse(bad).unwrap_err().code(), code, "{bad}");
        }
    }

    #[test]
    fn json_refuses_floats_and_bad_text() {
        let bad = [
            r#"{"quantity": 1.5, "money": null, "at": "2025-03-01T00:00:00Z", "on": "2025-03-01"}"#,
            r#"{"quantity": "1.5", "money": "1.005", "at": "2025-03-01T00:00:00Z", "on": "2025-03-01"}"#,
            r#"{"quantity": "1.5", "money": null, "at": "2025-03-01 08:00", "on": "2025-03-01"}"#,
            r#"{"quantity": "1.5", "money": null, "at": "2025-03-01T00:00:00Z", "on": "2025-3-1"}"#,
            r#"{"quantity": "1.5", "money": null, "at": "2025-03-01T00:00:00Z", "on": "2025-02-30"}"#,
            r#"{"quantity": "1.5", "money": null, "at": "2025-03-01T00:00:00Z", "on": "2025-03-01", "raw": "AAE"}"#,
        ];
        for text in bad {
            assert!(serde_json::from_str::<Sample>(text).is_err(), "{text}");
        }
        let ok = r#"{"quantity": 15, "at": 1740787200000, "on": "2025-03-01"}"#;
        let parsed: Sample = serde_json::from_str(ok).unwrap();
        assert_eq!(parsed.quantity.to_string(), "15.000000");
        assert_eq!(format_timestamp(parsed.at), "2025-03-01T00:00:00.000Z");
    }

    #[test]
    fn timestamps_truncate_to_milliseconds() {
        let fine = DateTime::parse_from_rfc3339("2025-03-01T08:30:15.123456789+08:00")
            .unwrap()
            .with_timezone(&Utc);
        let json = serde_json::to_string(&serde_json::json!({
            "quantity": "0", "at": fine.to_rfc3339(), "on": "2025-03-01"
        }))
        .unwrap();
        let parsed: Sample = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.at, timestamp_millis::truncate(fine));
        assert_eq!(parsed.at.timestamp_subsec_nanos(), 123_000_000);
        let before_epoch = timestamp_millis::from_millis(-1).unwrap();
        assert_eq!(format_timestamp(before_epoch), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn epoch_days() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        assert_eq!(date::to_epoch_days(epoch), 0);
        assert_eq!(date::from_epoch_days(0).unwrap(), epoch);
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        assert_eq!(date::to_epoch_days(d), 20148);
        assert_eq!(date::from_epoch_days(20148).unwrap(), d);
        assert!(date::from_epoch_days(i64::from(i32::MAX)).is_err());
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..10 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 200) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b"Man"), "TWFu");
        assert_eq!(base64_encode(b"Ma"), "TWE=");
        assert_eq!(base64_encode(b"M"), "TQ==");
        assert!(base64_decode("TQ=A").is_err());
        assert!(base64_decode("TQ==TWFu").is_err());
        assert!(base64_decode("T-==").is_err());
    }
}
