//! What the push endpoint decides about a body and each record in it, with no I/O: a body is
//! a batch within the limits ([`parse_batch`]); a record is admitted — its Kafka key and
//! framed raw payload — or rejected with a stable code ([`Admission::admit`]).
//!
//! A record comes in one of two shapes, by the client's configuration:
//! - **the system's own** (the client has a `mapping` for the domain): its fields by the
//!   system's names, mapped exactly as a pull instance maps them ([`crate::mapping::map`], after
//!   [`crate::mapping::from_json`], which `http_poll` uses too), so a system moves between pull
//!   and push without changing its payload;
//! - **raw** (no mapping): the raw schema's fields, with `record_id` and `region_code` beside
//!   them.
//!
//! Either way the region is decided on the record's own fields ([`crate::scope::decide`]).

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use schemas::Domain;
use schemas::records::ReportingLevel;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::PushClient;
use crate::config::MappingConfig;
use crate::limits::Limits;
use crate::raw::RawEncoder;
use crate::scope::{self, Stated};

/// What a client posts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Batch {
    /// The client's id of the batch: sent again with the same records, it is not written twice.
    pub batch_id: String,
    /// The records: in the system's own fields where the client has a mapping for the
    /// domain, else raw fields with `record_id` and `region_code` beside them.
    pub records: Vec<Value>,
}

/// A request that is not a batch the endpoint takes: its status, code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// The HTTP status it is answered with.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Chinese first.
    pub message: String,
}

/// Reads a request body as a batch, within `limits`. Pure.
pub fn parse_batch(body: &[u8], limits: &Limits) -> Result<Batch, BatchError> {
    let error = |status, code, message| BatchError {
        status,
        code,
        message,
    };
    let batch: Batch = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "batch_invalid",
            format!("批次不是有效的 JSON (the batch is not valid JSON): {e}"),
        )
    })?;
    let id = &batch.batch_id;
    let max = limits.max_batch_id_bytes;
    if id.trim().is_empty() || id.len() > max || id.chars().any(char::is_control) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "batch_id_invalid",
            format!(
                "batch_id 须为 1 至 {max} 字节、不含控制字符的文本 (batch_id must be 1 to {max} \
                 bytes without control characters)"
            ),
        ));
    }
    if batch.records.len() > limits.max_items {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "批次有 {} 条记录，超过上限 {} (the batch has {} records, over limits.max_items \
                 = {})",
                batch.records.len(),
                limits.max_items,
                batch.records.len(),
                limits.max_items
            ),
        ));
    }
    Ok(batch)
}

/// Why a record was rejected: its id if it had one, a stable code, a message (Chinese first).
pub type Rejection = (Option<String>, &'static str, String);

/// An admitted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its source record id, as the answer names it.
    pub record_id: String,
    /// Its Kafka key: the partition key of the entity it reports, else the record id
    /// ([`crate::raw`]).
    pub key: String,
    /// The framed raw record.
    pub payload: Vec<u8>,
}

/// What every record of one batch is checked against.
pub struct Admission<'a> {
    /// The client that sent the batch.
    pub client: &'a PushClient,
    /// The batch's domain.
    pub domain: Domain,
    /// The domain's raw encoder.
    pub encoder: &'a RawEncoder,
    /// What one record may cost.
    pub limits: &'a Limits,
    /// Written into provenance.
    pub connector_id: &'a str,
    /// The client's batch id, written into provenance.
    pub batch_id: &'a str,
}

impl Admission<'_> {
    /// One record: its id, Kafka key and payload, or why it is rejected.
    pub fn admit(&self, record: Value) -> Result<Admitted, Rejection> {
        let Value::Object(fields) = record else {
            return Err((
                None,
                "record_invalid",
                "记录不是 JSON 对象 (the record is not a JSON object)".to_owned(),
            ));
        };
        match self.client.mappings.get(&self.domain) {
            Some(mapping) => self.admit_own(mapping, fields),
            None => self.admit_raw(fields),
        }
    }

    /// A record in the system's own fields, mapped as a pull instance maps it.
    fn admit_own(
        &self,
        mapping: &MappingConfig,
        record: Map<String, Value>,
    ) -> Result<Admitted, Rejection> {
        let source = crate::mapping::from_json(&record);
        let mapped = crate::mapping::map(mapping, &source).map_err(|e| {
            let id = crate::mapping::record_id(mapping, &source).map(|id| cut_id(&id));
            (id, e.code, e.message)
        })?;
        let id = || Some(cut_id(&mapped.record_id));
        let mut stated =
            own_regions(self.domain, &mapped.fields).map_err(|m| (id(), "record_invalid", m))?;
        // A system's own record that states no region at all (a GPS point, say) is the
        // sender's: that is in its scope by definition, and claims nothing more.
        if stated.is_empty() {
            stated.push(Stated::Claimed("reporter", &self.client.region_code));
        }
        self.decide(&stated)
            .map_err(|(code, message)| (id(), code, message))?;
        self.encode(mapped.record_id, mapped.source_timestamp, mapped.fields)
    }

    /// A record in raw fields, with `record_id` and `region_code` beside them.
    fn admit_raw(&self, mut fields: Map<String, Value>) -> Result<Admitted, Rejection> {
        let invalid = |id: Option<String>, message: String| (id, "record_invalid", message);
        let record_id = match fields.remove("record_id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id,
            _ => {
                return Err(invalid(
                    None,
                    "记录缺少 record_id，或其为空 (record_id must be non-empty text)".to_owned(),
                ));
            }
        };
        let id = || Some(cut_id(&record_id));
        // `region_code` is the record's own division code (every raw schema has one), and a
        // raw record must state it.
        if !matches!(fields.get("region_code"), Some(Value::String(_))) {
            return Err(invalid(
                id(),
                "记录缺少 region_code (region_code is required text)".to_owned(),
            ));
        }
        let stated = own_regions(self.domain, &fields).map_err(|m| invalid(id(), m))?;
        self.decide(&stated)
            .map_err(|(code, message)| (id(), code, message))?;
        self.encode(record_id, None, fields)
    }

    fn decide(&self, stated: &[Stated<'_>]) -> Result<String, (&'static str, String)> {
        let me = self.client;
        scope::decide(me.level, &me.region_code, stated).map_err(|r| (r.code, r.message))
    }

    /// The raw record with its provenance, framed, within the record-size limit.
    fn encode(
        &self,
        record_id: String,
        source_timestamp: Option<DateTime<Utc>>,
        mut fields: Map<String, Value>,
    ) -> Result<Admitted, Rejection> {
        let me = self.client;
        fields.insert(
            "provenance".to_owned(),
            json!({
                "source_system_id": me.system_id,
                "reporting_level": ReportingLevel::from(me.level),
                "reporter_region_code": me.region_code,
                "source_record_id": record_id,
                "source_timestamp": source_timestamp,
                "received_at": Utc::now(),
                "connector_id": self.connector_id,
                "batch_id": self.batch_id,
            }),
        );
        let id = || Some(cut_id(&record_id));
        match self.encoder.encode(&mut Value::Object(fields)) {
            Ok(encoded) => {
                let (key, payload) = encoded.keyed(record_id.clone());
                match self.limits.record_fits(key.len(), payload.len()) {
                    Ok(()) => Ok(Admitted {
                        record_id,
                        key,
                        payload,
                    }),
                    Err(message) => Err((id(), "record_too_large", message)),
                }
            }
            Err(e) => Err((id(), e.code(), crate::instance::cut(e.to_string(), 1024))),
        }
    }
}

/// A record id as quoted in an answer.
fn cut_id(id: &str) -> String {
    crate::instance::cut(id.to_owned(), 256)
}

/// The regions a raw record's own fields state: its division codes and its USCCs' regions.
fn own_regions<'a>(
    domain: Domain,
    fields: &'a Map<String, Value>,
) -> Result<Vec<Stated<'a>>, String> {
    let (divisions, usccs) = scope::region_fields(domain);
    let mut stated = Vec::new();
    for (names, division) in [(divisions, true), (usccs, false)] {
        for &name in names {
            match fields.get(name) {
                None | Some(Value::Null) => {}
                Some(Value::String(code)) if division => stated.push(Stated::Division(name, code)),
                Some(Value::String(code)) => stated.push(Stated::Uscc(name, code)),
                Some(_) => return Err(format!("「{name}」须为文本 (`{name}` must be text)")),
            }
        }
    }
    Ok(stated)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::config::Level;
    use crate::push::ClientIdentity;

    /// The mapping of a county vehicle system that names its fields in Chinese, as a pull
    /// instance of it would have.
    const VEHICLES: &str = r#"
record_id = ["车架号"]
fields = { vin = "车架号", plate = "号牌号码", owner_uscc = "使用单位代码", owner_name = "使用单位", status = "状态", purchase_date = "购置日期" }
dates = { purchase_date = "%Y年%m月%d日" }
values = { status = { "在用" = "IN_USE" } }
"#;

    const POSITIONS: &str = r#"
record_id = ["终端号", "定位时间"]
fields = { terminal_id = "终端号", fix_time = "定位时间", latitude = "纬度", longitude = "经度" }
constants = { datum = "WGS84" }
"#;

    fn client() -> PushClient {
        let mapping = |text: &str| toml::from_str::<MappingConfig>(text).expect("mapping");
        PushClient {
            identity: ClientIdentity::Token("t".to_owned()),
            system_id: "cg-county-vehicles".to_owned(),
            region_code: "530114".to_owned(),
            level: Level::County,
            domains: vec![
                Domain::Vehicle,
                Domain::VehiclePosition,
                Domain::Institution,
            ],
            mappings: BTreeMap::from([
                (Domain::Vehicle, mapping(VEHICLES)),
                (Domain::VehiclePosition, mapping(POSITIONS)),
            ]),
        }
    }

    /// What `admit` answers: the record id and the key, or the rejection's record id and code.
    type Answer = Result<(String, String), (Option<String>, &'static str)>;

    /// What `admit` answers for `record` of `domain`.
    fn admit(domain: Domain, record: Value) -> Answer {
        let client = client();
        let encoder = RawEncoder::with_schema_id(domain, 7).expect("encoder");
        let limits = Limits::default();
        let admission = Admission {
            client: &client,
            domain,
            encoder: &encoder,
            limits: &limits,
            connector_id: "c1",
            batch_id: "b1",
        };
        admission
            .admit(record)
            .map(|a| (a.record_id, a.key))
            .map_err(|(id, code, _)| (id, code))
    }

    #[test]
    fn records_are_admitted_in_the_systems_own_fields_or_raw() {
        let own = |uscc: &str| {
            json!({"车架号": "LSVAM4187C2184847", "号牌号码": "云A12345", "使用单位代码": uscc,
                   "使用单位": "呈贡区机关事务管理局", "状态": "在用", "购置日期": null})
        };
        // Valid USCCs (GB 32100) of units registered in 呈贡区 (530114) and in 昆明市 (530100).
        let here = "115301140151174049";
        let with = |mut record: Value, field: &str, value: Value| {
            record[field] = value;
            record
        };
        let rejected = |id: Option<&str>, code| Err((id.map(str::to_owned), code));
        // Keyed by the partition key (the VIN, the USCC), else by the record id.
        let ok = |id: &str, key: &str| Ok((id.to_owned(), key.to_owned()));
        let vin = Some("LSVAM4187C2184847");
        let cases: Vec<(&str, Domain, Value, Answer)> = vec![
            (
                "own fields",
                Domain::Vehicle,
                own(here),
                ok("LSVAM4187C2184847", "LSVAM4187C2184847"),
            ),
            (
                "own fields, the VIN in lower case: keyed by its canonical form",
                Domain::Vehicle,
                with(own(here), "车架号", json!("lsvam4187c2184847")),
                ok("lsvam4187c2184847", "LSVAM4187C2184847"),
            ),
            (
                "own fields, a date in the system's format",
                Domain::Vehicle,
                with(own(here), "购置日期", json!("2021年03月05日")),
                ok("LSVAM4187C2184847", "LSVAM4187C2184847"),
            ),
            (
                "own fields, a date in another format",
                Domain::Vehicle,
                with(own(here), "购置日期", json!("2021-03-05")),
                rejected(vin, "date_format"),
            ),
            (
                "own fields, no id",
                Domain::Vehicle,
                with(own(here), "车架号", json!(" ")),
                rejected(None, "record_id_missing"),
            ),
            (
                "own fields, another county's unit",
                Domain::Vehicle,
                own("11500154015162553X"),
                rejected(vin, "out_of_scope"),
            ),
            (
                "own fields, a number where text is sent",
                Domain::Vehicle,
                with(own(here), "号牌号码", json!(12345)),
                ok("LSVAM4187C2184847", "LSVAM4187C2184847"),
            ),
            (
                "own fields, no region stated: the sender's",
                Domain::VehiclePosition,
                json!({"终端号": "T1", "定位时间": "2025-11-01T08:00:00+08:00", "纬度": 24.88, "经度": 102.83}),
                ok(
                    "T1|2025-11-01T08:00:00+08:00",
                    "T1|2025-11-01T08:00:00+08:00",
                ),
            ),
            (
                "raw fields",
                Domain::Institution,
                json!({"record_id": "r1", "region_code": "530114", "uscc": here, "name": "呈贡区机关事务管理局"}),
                ok("r1", here),
            ),
            (
                "raw fields, a unit registered by the city, reported in the county",
                Domain::EnergyReport,
                json!({"record_id": "e1", "region_code": "530114", "uscc": "115301000151174040",
                       "period": "2025-03", "lines": []}),
                ok("e1", "115301000151174040"),
            ),
            (
                "raw fields, a withdrawn division code",
                Domain::EnergyReport,
                json!({"record_id": "e2", "region_code": "530121", "uscc": here,
                       "period": "2025-03", "lines": []}),
                ok("e2", here),
            ),
            (
                "raw fields, a division code the USCC contradicts",
                Domain::EnergyReport,
                json!({"record_id": "e3", "region_code": "530114", "uscc": "11500154015162553X",
                       "period": "2025-03", "lines": []}),
                rejected(Some("e3"), "region_mismatch"),
            ),
            (
                "raw fields, no region_code",
                Domain::Institution,
                json!({"record_id": "r1", "uscc": here, "name": "呈贡区机关事务管理局"}),
                rejected(Some("r1"), "record_invalid"),
            ),
            (
                "not an object",
                Domain::Vehicle,
                json!(["车架号"]),
                rejected(None, "record_invalid"),
            ),
        ];
        for (case, domain, record, expected) in cases {
            assert_eq!(admit(domain, record), expected, "{case}");
        }
    }
}
