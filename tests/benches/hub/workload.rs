//! The race's input: GPS points of official vehicles, each reported by the county, the
//! prefecture and the province platform (realistic VINs, plates and provenance built with the
//! simulator's and `schemas::ids` code, in Confluent wire format under the registered raw
//! schema), and a registry snapshot of public institutions sent twice.
//!
//! Raw position reports are keyed as [`Keying`] says: by default **co-partitioned**, as
//! co-partitioning connectors write them (the vehicle's partition key, in the partition
//! `schemas::partition` gives it), or by source record id under the producer's default
//! partitioner (`BENCH_COPARTITIONED=0`), which sends every report through the hub's
//! repartition hop.

use chrono::{DateTime, Duration, FixedOffset, SecondsFormat, Utc};
use schemas::codec::Encoder;
use schemas::partition::Partitioned as _;
use schemas::records::{
    GeodeticDatum, Provenance, RawInstitution, RawVehiclePosition, ReportingLevel,
};
use simulator::codes::{make_uscc, plate_with_dot, vin_year_char, with_vin_check};
use simulator::divisions::PROVINCES;

/// How the generator keys and partitions raw position reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keying {
    /// Keyed by the vehicle's partition key ([`schemas::partition::Partitioned`]: its
    /// canonical VIN, the hub's entity id up to its `|`), in the partition
    /// [`schemas::partition::partition_for`] gives that key among `partitions`: every report
    /// of a vehicle is in the partition the hub resolves it in.
    CoPartitioned {
        /// Partitions of the raw topic.
        partitions: i32,
    },
    /// Keyed by the source record id, partitioned by the producer's default partitioner: a
    /// vehicle's reports are spread over the partitions.
    SourceRecordId,
}

/// One raw record: its Kafka key, partition and framed Avro value.
pub struct Report {
    /// Kafka key, as [`Keying`] says.
    pub key: String,
    /// The partition to write it to; `None`: the producer's partitioner decides by the key.
    pub partition: Option<i32>,
    /// Confluent-framed Avro.
    pub payload: Vec<u8>,
    /// Index of the GPS point it reports.
    pub point: u32,
}

/// The position workload, in the order it is written to the raw topic.
pub struct Positions {
    /// Every report, three per point.
    pub reports: Vec<Report>,
    /// Distinct GPS points.
    pub points: usize,
    /// Per point, the entity id the hub keys it by (`<VIN>|<fix time ms>`).
    pub entity_ids: Vec<String>,
    /// Vehicles reporting.
    pub vehicles: usize,
}

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn float(&mut self, low: f64, high: f64) -> f64 {
        low + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (high - low)
    }
}

/// A county of the simulator's provinces with what a vehicle filed there carries.
struct County {
    code: &'static str,
    name: &'static str,
    prefecture: &'static str,
    prefecture_name: &'static str,
    province: &'static str,
    province_name: &'static str,
    plate: (char, char),
    bbox: simulator::geo::BBox,
}

fn counties() -> Vec<County> {
    let mut out = Vec::new();
    for p in PROVINCES.iter() {
        for pref in p.prefectures {
            for &(code, name, letters) in pref.counties {
                let letter = letters
                    .chars()
                    .next()
                    .or_else(|| pref.plate_letters.chars().next())
                    .unwrap_or('A');
                out.push(County {
                    code,
                    name,
                    prefecture: pref.code,
                    prefecture_name: pref.name,
                    province: p.code,
                    province_name: p.name,
                    plate: (p.plate_char, letter),
                    bbox: pref.bbox,
                });
            }
        }
    }
    out
}

struct Vehicle {
    county: usize,
    vin: String,
    plate: String,
    terminal: String,
    lat: f64,
    lon: f64,
    heading: f64,
    odometer: f64,
    start: DateTime<Utc>,
}

/// Common world manufacturer identifiers of official cars sold in China.
const WMIS: [&str; 6] = ["LFV", "LSV", "LGB", "LBV", "LVS", "LFP"];

fn vehicles(count: usize, counties: &[County], now: DateTime<Utc>) -> Vec<Vehicle> {
    let alphabet: Vec<char> = schemas::ids::VIN_ALPHABET.chars().collect();
    let mut r = Rng(0x4855_4954_4F4E_4721);
    (0..count)
        .map(|v| {
            let county = v % counties.len();
            let c = &counties[county];
            let mut vin = String::from(WMIS[v % WMIS.len()]);
            for _ in 0..5 {
                vin.push(alphabet[r.below(alphabet.len() as u64) as usize]);
            }
            vin.push('0');
            vin.push(vin_year_char(2015 + (v % 10) as i32));
            vin.push(alphabet[r.below(10) as usize + 10]);
            vin.push_str(&format!("{:06}", v % 1_000_000));
            let vin = with_vin_check(&vin).unwrap_or(vin);
            let bbox = c.bbox;
            Vehicle {
                county,
                vin,
                plate: format!("{}{}{:05}", c.plate.0, c.plate.1, (v * 7 + 11) % 100_000),
                terminal: format!("T{}{:06}", c.code, v % 1_000_000),
                lat: r.float(bbox.min_lat + 0.01, bbox.max_lat - 0.01),
                lon: r.float(bbox.min_lon + 0.01, bbox.max_lon - 0.01),
                heading: (r.below(4) * 90) as f64,
                odometer: r.float(5_000.0, 180_000.0),
                // Tracks of the last hours: every fix lies before its reports' receipt.
                start: now - Duration::hours(4) + Duration::seconds(r.below(3_600) as i64),
            }
        })
        .collect()
}

/// One fix of a vehicle, as every level relays it.
struct Fix {
    time: DateTime<Utc>,
    lat: f64,
    lon: f64,
    speed: f64,
    heading: f64,
    odometer: f64,
}

fn fix(v: &Vehicle, k: usize) -> Fix {
    let seconds = 15 * k as i64;
    let speed = if k % 10 == 9 {
        0.0
    } else {
        20.0 + (k * 13 % 50) as f64
    };
    let metres = 15.0 * 11.0 * k as f64;
    let rad = v.heading.to_radians();
    Fix {
        time: v.start + Duration::seconds(seconds),
        lat: ((v.lat + metres * rad.cos() / 111_320.0) * 1e6).round() / 1e6,
        lon: ((v.lon + metres * rad.sin() / 95_000.0) * 1e6).round() / 1e6,
        speed,
        heading: v.heading,
        odometer: ((v.odometer + metres / 1000.0) * 10.0).round() / 10.0,
    }
}

/// The report of `fix` by `level`: each level names its own system and record id, writes the
/// fix time in its own format (county: local time; prefecture: RFC 3339 with offset;
/// province: epoch seconds), the prefecture dots the plate and the province sends the VIN in
/// lower case, as regional platforms do; the values are the same.
fn report(v: &Vehicle, c: &County, f: &Fix, level: ReportingLevel) -> (String, RawVehiclePosition) {
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8");
    let epoch = f.time.timestamp();
    let (system, reporter, key, connector, fix_time, plate, vin, delay) = match level {
        ReportingLevel::County => (
            format!("{}-gwyc-gps", c.code),
            c.code,
            format!("GPS-{}-{epoch}", v.terminal),
            format!("{}-county-gps-01", c.code),
            f.time
                .with_timezone(&china)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            v.plate.clone(),
            v.vin.clone(),
            2,
        ),
        ReportingLevel::Prefecture => (
            format!("{}-gwyc-jk", c.prefecture),
            c.prefecture,
            format!("JK{}-{}-{epoch}", c.prefecture, v.terminal),
            format!("{}-city-gps-01", c.prefecture),
            f.time
                .with_timezone(&china)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            plate_with_dot(&v.plate),
            v.vin.clone(),
            5,
        ),
        _ => (
            format!("{}-gwyc-bds", c.province),
            c.province,
            format!("BDS-{}-{}", v.vin, epoch * 1000),
            format!("{}-province-bds-01", c.province),
            epoch.to_string(),
            v.plate.clone(),
            v.vin.to_lowercase(),
            9,
        ),
    };
    let raw = RawVehiclePosition {
        provenance: Provenance {
            source_system_id: system,
            reporting_level: level,
            reporter_region_code: reporter.to_owned(),
            source_record_id: key.clone(),
            source_timestamp: None,
            received_at: f.time + Duration::seconds(delay),
            connector_id: connector,
            batch_id: None,
        },
        terminal_id: Some(v.terminal.clone()),
        plate: Some(plate),
        vin: Some(vin),
        region_code: Some(c.code.to_owned()),
        fix_time,
        latitude: f.lat,
        longitude: f.lon,
        datum: GeodeticDatum::Wgs84,
        speed_kmh: Some(f.speed),
        heading_deg: Some(f.heading),
        odometer_km: Some(f.odometer),
    };
    (key, raw)
}

/// The Kafka key and partition of `raw`, reported under source record id `record_id`.
fn keyed(raw: &RawVehiclePosition, record_id: String, keying: Keying) -> (String, Option<i32>) {
    match keying {
        Keying::CoPartitioned { partitions } => {
            // As the connectors key raw records (`connectors::raw`); every generated VIN is
            // valid, so none falls back to its record id.
            let key = raw
                .partition_key()
                .expect("a generated report has a valid VIN");
            let partition = schemas::partition::partition_for(key.as_bytes(), partitions);
            (key, Some(partition))
        }
        Keying::SourceRecordId => (record_id, None),
    }
}

/// At least `reports` position reports (three per point) of `vehicles` vehicles, the
/// prefecture's copy of a point arriving 2,000 points after the county's and the province's
/// 5,000 after, as relays lag; keyed as `keying` says.
pub fn positions(
    encoder: &Encoder<RawVehiclePosition>,
    reports: usize,
    vehicles_count: usize,
    keying: Keying,
) -> Positions {
    let counties = counties();
    // Whole seconds: every level's format of a fix time keeps whole seconds only.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now is a valid time");
    let vehicles = vehicles(vehicles_count, &counties, now);
    let points = reports.div_ceil(3);
    let lags = [0usize, 2_000, 5_000];
    let levels = [
        ReportingLevel::County,
        ReportingLevel::Prefecture,
        ReportingLevel::Province,
    ];
    let mut out = Vec::with_capacity(points * 3);
    let entity_ids = (0..points)
        .map(|i| {
            let v = &vehicles[i % vehicles.len()];
            let f = fix(v, i / vehicles.len());
            format!("{}|{}", v.vin, f.time.timestamp_millis())
        })
        .collect();
    for step in 0..points + lags[2] {
        for (level, lag) in levels.iter().zip(lags) {
            let Some(i) = step.checked_sub(lag).filter(|i| *i < points) else {
                continue;
            };
            let v = &vehicles[i % vehicles.len()];
            let f = fix(v, i / vehicles.len());
            let (record_id, raw) = report(v, &counties[v.county], &f, *level);
            let (key, partition) = keyed(&raw, record_id, keying);
            out.push(Report {
                key,
                partition,
                payload: encoder.encode(&raw).expect("a generated report encodes"),
                point: u32::try_from(i).expect("fewer than 2³² points"),
            });
        }
    }
    Positions {
        reports: out,
        points,
        entity_ids,
        vehicles: vehicles.len(),
    }
}

/// The registry snapshot's institutions over the simulator's counties, each
/// its county directory's record. In the second pass every hundredth changed its actual
/// headcount; the others are sent again unchanged (new batch, new receipt time).
pub struct Institutions {
    counties: Vec<County>,
    taken: chrono::DateTime<Utc>,
}

impl Institutions {
    /// The snapshot's institutions.
    pub fn new() -> Self {
        Institutions {
            counties: counties(),
            taken: Utc::now() - Duration::days(1),
        }
    }

    /// Institution `i` as pass `pass` (1 or 2) sends it: key and record.
    pub fn record(&self, i: usize, pass: u32) -> (String, RawInstitution) {
        let c = &self.counties[i % self.counties.len()];
        let n = i / self.counties.len() + 1;
        let school = !i.is_multiple_of(3);
        let (prefix, kind, name) = if school {
            ("12", "事业单位-中小学", format!("{}第{n}中学", c.name))
        } else {
            ("11", "国家机关", format!("{}第{n}办事处", c.name))
        };
        let uscc = make_uscc(prefix, c.code, &format!("{:08}", n))
            .expect("a generated USCC is well formed");
        let changed = pass == 2 && i.is_multiple_of(100);
        let staff = 20 + (i % 180) + usize::from(changed);
        let key = format!("MLK-{}-{n:07}", c.code);
        let when = self.taken + Duration::hours(i64::from(pass - 1) * 24);
        let record = RawInstitution {
            provenance: Provenance {
                source_system_id: format!("{}-gggl-mlk", c.code),
                reporting_level: ReportingLevel::County,
                reporter_region_code: c.code.to_owned(),
                source_record_id: key.clone(),
                source_timestamp: Some(if changed { when } else { self.taken }),
                received_at: when + Duration::minutes(5),
                connector_id: format!("{}-mlk-sftp-01", c.code),
                batch_id: Some(format!("{}-snapshot-{pass}", c.code)),
            },
            uscc,
            name,
            short_name: None,
            institution_type: Some(kind.to_owned()),
            region_code: Some(c.code.to_owned()),
            parent_uscc: None,
            parent_name: Some(format!("{}人民政府", c.name)),
            authorised_staff: Some((staff + 4).to_string()),
            actual_staff: Some(staff.to_string()),
            address: Some(format!(
                "{}{}{}人民路{}号",
                c.province_name, c.prefecture_name, c.name, n
            )),
            status: Some("存续".to_owned()),
        };
        (key, record)
    }
}
