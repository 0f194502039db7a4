//! Avro schemas as the registry sees them: parsed once, with the form that decides whether two
//! texts are "the same schema", and a self-contained copy for compatibility checks.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, UnionSchema};
use serde_json::Value;

/// The only schema type the registry accepts (Confluent's `schemaType`, absent means AVRO).
pub const AVRO: &str = "AVRO";

/// A schema text accepted by the registry.
#[derive(Debug, Clone)]
pub(crate) struct ParsedSchema {
    /// The text as registered; the API returns it unchanged.
    pub text: String,
    /// The identity of the schema: two texts with the same form are the same schema and share
    /// one id. See [`normalized_form`].
    pub form: String,
    /// The schema with named types inlined at every use, for compatibility checks.
    pub resolved: Schema,
}

/// Parses `text` as a schema of `schema_type` (`None` = AVRO, like Confluent).
pub(crate) fn parse(text: &str, schema_type: Option<&str>) -> Result<ParsedSchema, String> {
    match schema_type {
        None => {}
        Some(t) if t.eq_ignore_ascii_case(AVRO) => {}
        Some(other) => {
            return Err(format!(
                "schemaType '{other}' is not supported: this registry accepts AVRO schemas only"
            ));
        }
    }
    if text.trim().is_empty() {
        return Err("Empty schema".to_owned());
    }
    let schema = Schema::parse_str(text).map_err(|e| with_causes(&e))?;
    let form = normalized_form(&schema)?;
    let resolved = inline_named_types(&schema);
    Ok(ParsedSchema {
        text: text.to_owned(),
        form,
        resolved,
    })
}

/// An error's message followed by its causes, e.g. "Failed to parse schema from JSON: EOF
/// while parsing an object at line 1 column 1".
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = e.source();
    }
    message
}

/// The schema's full JSON form as apache-avro writes it back (every attribute kept: defaults,
/// logical types, docs, aliases, custom properties), with object keys sorted and no
/// whitespace.
///
/// Why not Avro's Parsing Canonical Form: it strips `default`, `logicalType`, `doc` and
/// `aliases`, so a schema that only removes a field's default would count as the "same" schema
/// as its predecessor and the registry would hand back the old id instead of checking
/// compatibility. Equal forms imply equal Parsing Canonical Forms; whitespace, key order and
/// formatting differences still map to one id, like Confluent's normalised comparison.
pub(crate) fn normalized_form(schema: &Schema) -> Result<String, String> {
    let value = serde_json::to_value(schema).map_err(|e| e.to_string())?;
    let mut out = String::new();
    write_sorted(&value, &mut out);
    Ok(out)
}

fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_sorted(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Upper bound on schema nodes produced by [`inline_named_types`]; a schema that reuses named
/// types so often that inlining would exceed it is checked as written instead.
const INLINE_NODE_BUDGET: usize = 100_000;

/// A copy of `schema` where every reference to a named type defined elsewhere in the schema is
/// replaced by its definition (recursive references stay references).
///
/// Why: apache-avro's compatibility checker compares two references by name only and cannot
/// compare a definition with a reference, so a new version that merely moves the first use of
/// a shared type (say `Address`) to another field would be reported incompatible.
pub(crate) fn inline_named_types(schema: &Schema) -> Schema {
    let mut definitions = HashMap::new();
    collect_definitions(schema, &mut definitions);
    let mut inlined = schema.clone();
    let mut budget = INLINE_NODE_BUDGET;
    if inline(&mut inlined, &definitions, &mut Vec::new(), &mut budget) {
        inlined
    } else {
        schema.clone()
    }
}

fn collect_definitions(schema: &Schema, definitions: &mut HashMap<Name, Schema>) {
    if let (Some(name), false) = (schema.name(), matches!(schema, Schema::Ref { .. })) {
        definitions
            .entry(name.clone())
            .or_insert_with(|| schema.clone());
    }
    match schema {
        Schema::Record(record) => {
            for field in &record.fields {
                collect_definitions(&field.schema, definitions);
            }
        }
        Schema::Array(array) => collect_definitions(&array.items, definitions),
        Schema::Map(map) => collect_definitions(&map.types, definitions),
        Schema::Union(union) => {
            for variant in union.variants() {
                collect_definitions(variant, definitions);
            }
        }
        _ => {}
    }
}

/// Inlines in place; `false` when the node budget ran out.
fn inline(
    schema: &mut Schema,
    definitions: &HashMap<Name, Schema>,
    enclosing: &mut Vec<Name>,
    budget: &mut usize,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    if let Schema::Ref { name } = schema {
        if enclosing.contains(name) {
            return true;
        }
        match definitions.get(name) {
            Some(definition) => *schema = definition.clone(),
            None => return true,
        }
    }
    match schema {
        Schema::Record(record) => {
            enclosing.push(record.name.clone());
            let ok = record
                .fields
                .iter_mut()
                .all(|field| inline(&mut field.schema, definitions, enclosing, budget));
            enclosing.pop();
            ok
        }
        Schema::Array(array) => inline(&mut array.items, definitions, enclosing, budget),
        Schema::Map(map) => inline(&mut map.types, definitions, enclosing, budget),
        Schema::Union(union) => {
            let mut variants = union.variants().to_vec();
            if !variants
                .iter_mut()
                .all(|variant| inline(variant, definitions, enclosing, budget))
            {
                return false;
            }
            match UnionSchema::new(variants) {
                Ok(inlined) => {
                    *union = inlined;
                    true
                }
                Err(_) => false,
            }
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_schema_despite_formatting_but_not_despite_defaults() {
        let a = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}"#,
            None,
        )
        .unwrap();
        let b = parse(
            r#"{ "fields": [ {"default": 1, "type": "int", "name": "a"} ],
                 "name": "R", "type": "record" }"#,
            Some("AVRO"),
        )
        .unwrap();
        let c = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            None,
        )
        .unwrap();
        assert_eq!(a.form, b.form);
        assert_ne!(a.form, c.form);
        assert_ne!(a.text, b.text);
    }

    #[test]
    fn rejects_other_types_and_bad_text() {
        for (text, schema_type) in [
            (r#""string""#, Some("PROTOBUF")),
            ("", None),
            ("{", None),
            (r#"{"type":"record","name":"R"}"#, None),
            (r#"{"type":"nope"}"#, None),
        ] {
            assert!(parse(text, schema_type).is_err(), "{text} {schema_type:?}");
        }
        assert!(parse(r#""string""#, Some("avro")).is_ok());
    }

    #[test]
    fn inlines_shared_named_types_but_not_recursion() {
        let text = r#"{"type":"record","name":"R","fields":[
            {"name":"home","type":{"type":"record","name":"Address","fields":[{"name":"city","type":"string"}]}},
            {"name":"work","type":"Address"},
            {"name":"next","type":["null","R"],"default":null}]}"#;
        let parsed = parse(text, None).unwrap();
        let Schema::Record(record) = &parsed.resolved else {
            panic!("not a record")
        };
        assert!(matches!(record.fields[1].schema, Schema::Record(_)));
        let Schema::Union(next) = &record.fields[2].schema else {
            panic!("not a union")
        };
        assert!(matches!(next.variants()[1], Schema::Ref { .. }));
    }
}
