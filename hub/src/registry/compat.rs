//! Compatibility levels and the check a new schema must pass against a subject's earlier
//! versions, with apache-avro's schema resolution rules deciding.

use std::fmt;
use std::str::FromStr;

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

/// Confluent's compatibility levels. BACKWARD: the new schema can read data written with the
/// previous one; FORWARD: the previous schema can read data written with the new one; FULL:
/// both. The `_TRANSITIVE` variants check every live version instead of the latest only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    Backward,
    /// The new schema reads data written with every version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The level's name on the wire, e.g. `BACKWARD_TRANSITIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl Default for CompatibilityLevel {
    /// BACKWARD_TRANSITIVE: consumers can always read a topic from its beginning with the
    /// newest schema.
    fn default() -> Self {
        CompatibilityLevel::BackwardTransitive
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a compatibility level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compatibility level `{0}`")]
pub struct UnknownLevel(pub String);

impl FromStr for CompatibilityLevel {
    type Err = UnknownLevel;

    /// Parses a level name, ignoring ASCII case like Confluent does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// An earlier version to check against.
pub(crate) struct Earlier<'a> {
    /// Its version number in the subject.
    pub version: u32,
    /// Its schema, named types inlined.
    pub schema: &'a Schema,
}

/// Checks `candidate` against `earlier` (oldest first) under `level`; returns one message per
/// incompatibility, empty when compatible. Non-transitive levels look at the last entry only.
pub(crate) fn check(
    level: CompatibilityLevel,
    candidate: &Schema,
    earlier: &[Earlier<'_>],
) -> Vec<String> {
    let against: &[Earlier<'_>] = if level.transitive() {
        earlier
    } else {
        match earlier.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut messages = Vec::new();
    for old in against {
        if level.backward()
            && let Some(reason) = can_read(old.schema, candidate)
        {
            messages.push(format!(
                "{level}: the new schema cannot read data written with version {}: {reason}",
                old.version
            ));
        }
        if level.forward()
            && let Some(reason) = can_read(candidate, old.schema)
        {
            messages.push(format!(
                "{level}: version {} cannot read data written with the new schema: {reason}",
                old.version
            ));
        }
    }
    messages
}

/// Why a reader with `reader` cannot read everything written with `writer`, if it cannot.
/// Partial compatibility (an enum symbol or union branch the reader lacks) is an
/// incompatibility, as in Confluent: some written data would fail to decode.
fn can_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "the reader lacks some enum symbols or union branches the writer may write".to_owned(),
        ),
        Err(e) => Some(format!("{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        let text = format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
        crate::registry::avro::parse(&text, None).unwrap().resolved
    }

    #[test]
    fn levels_round_trip_and_ignore_case() {
        for level in CompatibilityLevel::ALL {
            assert_eq!(level.as_str().parse::<CompatibilityLevel>(), Ok(level));
        }
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>(),
            Ok(CompatibilityLevel::FullTransitive)
        );
        assert!("SIDEWAYS".parse::<CompatibilityLevel>().is_err());
    }

    #[test]
    fn decides_by_level() {
        let v1 = schema(r#"{"name":"a","type":"int"}"#);
        let v2_default =
            schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
        let v2_required = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        let v2_type = schema(r#"{"name":"a","type":"string"}"#);
        let v2_widened = schema(r#"{"name":"a","type":"long"}"#);
        let earlier = [Earlier {
            version: 1,
            schema: &v1,
        }];
        use CompatibilityLevel::*;
        let cases: [(CompatibilityLevel, &Schema, bool); 10] = [
            (Backward, &v2_default, true),
            (Backward, &v2_required, false),
            (Forward, &v2_required, true),
            (Full, &v2_default, true),
            (Full, &v2_required, false),
            (BackwardTransitive, &v2_type, false),
            (None, &v2_type, true),
            (Backward, &v2_widened, true),
            (Forward, &v2_widened, false),
            (FullTransitive, &v2_widened, false),
        ];
        for (level, candidate, compatible) in cases {
            let messages = check(level, candidate, &earlier);
            assert_eq!(messages.is_empty(), compatible, "{level}: {messages:?}");
        }
        assert!(check(Backward, &v2_type, &[]).is_empty());
    }

    #[test]
    fn moving_the_first_use_of_a_named_type_stays_compatible() {
        let address =
            r#"{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}"#;
        let before = schema(&format!(
            r#"{{"name":"home","type":{address}}},{{"name":"work","type":"Address"}}"#
        ));
        let after = schema(&format!(
            r#"{{"name":"work","type":{address}}},{{"name":"home","type":"Address"}}"#
        ));
        let earlier = [Earlier {
            version: 1,
            schema: &before,
        }];
        let messages = check(CompatibilityLevel::FullTransitive, &after, &earlier);
        assert!(messages.is_empty(), "{messages:?}");
    }

    #[test]
    fn transitive_checks_every_version() {
        let v1 = schema(r#"{"name":"a","type":"int"}"#);
        let v2 = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
        // Reads v2 (b is there) but not v1 (b has no default).
        let v3 = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        let earlier = [
            Earlier {
                version: 1,
                schema: &v1,
            },
            Earlier {
                version: 2,
                schema: &v2,
            },
        ];
        assert!(check(CompatibilityLevel::Backward, &v3, &earlier).is_empty());
        let messages = check(CompatibilityLevel::BackwardTransitive, &v3, &earlier);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(messages[0].contains("version 1"), "{messages:?}");
    }
}
