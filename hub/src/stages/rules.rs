//! The configuration of the validate and normalise stages ([`Rules`]): units and their
//! factors, standard-coal coefficients, substance conversions (litres of fuel → kg), the
//! wording of enumerations, and the thresholds of the plausibility and cross-field checks.
//!
//! Three TOML files, each shipped in `hub/config/` and embedded as the default, so tests and
//! the binary work without any file: `units.toml` (every coefficient with its source),
//! `labels.toml` and `checks.toml`. [`Rules::load`] reads a directory holding replacements; a
//! file present there replaces its embedded default as a whole.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use schemas::records::{
    AcquisitionMode, AssetCategoryEdition, AssetStatus, CanonicalUnit, CostItem, EnergyCarrier,
    InstitutionStatus, InstitutionType, OfficeSpaceUse, OfficialRank, VehicleEnergyType,
    VehicleStatus, VehicleUsageCategory,
};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};

use super::text::label_key;

const UNITS_TOML: &str = include_str!("../../config/units.toml");
const LABELS_TOML: &str = include_str!("../../config/labels.toml");
const CHECKS_TOML: &str = include_str!("../../config/checks.toml");

/// A configuration file that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("{file}: {source}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message (names line and key).
        source: Box<toml::de::Error>,
    },
    /// A value that parsed as TOML but is not valid here.
    #[error("{file}: {what}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, naming the entry.
        what: String,
    },
}

impl RulesError {
    /// Stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RulesError::Read { .. } => "rules_read",
            RulesError::Syntax { .. } => "rules_syntax",
            RulesError::Invalid { .. } => "rules_invalid",
        }
    }
}

/// What a reported unit stands for: a canonical unit, or yuan (money is not a
/// [`CanonicalUnit`]; it has its own type, `Money`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Canonical {
    /// A physical canonical unit.
    Unit(CanonicalUnit),
    /// Chinese yuan (元).
    Yuan,
}

/// A reported unit: `value × factor` is the amount in `canonical`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitRule {
    /// The canonical unit.
    pub canonical: Canonical,
    /// Canonical units per reported unit.
    pub factor: Decimal,
    /// Where the factor comes from.
    pub source: String,
}

/// What a quantity is of, for conversions that depend on the substance (litres of gasoline
/// → kg; tonnes of water → m³).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Substance {
    /// An energy carrier.
    Carrier(EnergyCarrier),
    /// Water (用水).
    Water,
    /// Anything: conversions that hold whatever is measured (L ↔ m³).
    Any,
}

/// A conversion between two canonical units for one substance.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// What it applies to.
    pub substance: Substance,
    /// From this canonical unit …
    pub from: CanonicalUnit,
    /// … to this one.
    pub to: CanonicalUnit,
    /// `to` units per `from` unit.
    pub factor: Decimal,
    /// Where the factor comes from.
    pub source: String,
}

/// An energy carrier's canonical unit and standard-coal coefficient (折标准煤系数).
#[derive(Debug, Clone, PartialEq)]
pub struct CarrierRule {
    /// Canonical unit of the carrier's physical amount.
    pub unit: CanonicalUnit,
    /// kgce per canonical unit.
    pub kgce_per_unit: Decimal,
    /// Where the coefficient comes from (published on the national record).
    pub source: String,
}

/// Thresholds of the plausibility and cross-field checks (`checks.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Checks {
    /// Relative tolerance of 能源消费总量 against Σ 分品种折标量 (0.005 = ±0.5 %).
    pub energy_total_tolerance: Decimal,
    /// Price cap of 机要通信用车, yuan.
    pub confidential_vehicle_max_price_yuan: Decimal,
    /// Displacement cap of 机要通信用车, L.
    pub confidential_vehicle_max_displacement_l: Decimal,
    /// Earliest plausible date of a purchase, registration, acquisition or accounting.
    pub earliest_date: NaiveDate,
    /// Earliest plausible year of a statistical period.
    pub earliest_year: i32,
    /// Earliest plausible year a building was completed.
    pub earliest_completion_year: i32,
    /// Earliest plausible GPS fix.
    pub earliest_fix_time: DateTime<Utc>,
    /// How far a GPS fix may lie after the time it was received (clock drift), seconds.
    pub fix_time_future_slack_seconds: i64,
    /// Highest plausible ground speed, km/h.
    pub max_speed_kmh: f64,
}

/// Labels of one enumeration, keyed by [`label_key`].
#[derive(Debug, Clone, PartialEq)]
pub struct Labels<E> {
    by_key: HashMap<String, E>,
}

impl<E: Copy> Labels<E> {
    /// The symbol a label as sent stands for.
    pub fn get(&self, label: &str) -> Option<E> {
        self.by_key.get(&label_key(label)).copied()
    }
}

/// The labels of every enumeration the raw forms carry as text (`labels.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSets {
    /// 公共机构类型.
    pub institution_type: Labels<InstitutionType>,
    /// 机构状态.
    pub institution_status: Labels<InstitutionStatus>,
    /// 编制类别.
    pub vehicle_usage_category: Labels<VehicleUsageCategory>,
    /// 车辆能源类型.
    pub vehicle_energy_type: Labels<VehicleEnergyType>,
    /// 车辆状态.
    pub vehicle_status: Labels<VehicleStatus>,
    /// 能源品种.
    pub energy_carrier: Labels<EnergyCarrier>,
    /// 成本项目.
    pub cost_item: Labels<CostItem>,
    /// 取得方式.
    pub acquisition_mode: Labels<AcquisitionMode>,
    /// 资产使用状况.
    pub asset_status: Labels<AssetStatus>,
    /// 资产分类标准版本.
    pub asset_category_edition: Labels<AssetCategoryEdition>,
    /// 用房类型.
    pub office_space_use: Labels<OfficeSpaceUse>,
    /// 职级.
    pub official_rank: Labels<OfficialRank>,
}

/// Everything the validate and normalise stages are configured with.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    units: HashMap<String, UnitRule>,
    conversions: Vec<Conversion>,
    carriers: HashMap<EnergyCarrier, CarrierRule>,
    /// Enumeration labels.
    pub labels: LabelSets,
    /// Check thresholds.
    pub checks: Checks,
}

static EMBEDDED: LazyLock<Rules> = LazyLock::new(|| {
    // The embedded files are tested (`embedded_rules_load`); failing here is a build defect.
    Rules::from_toml(UNITS_TOML, LABELS_TOML, CHECKS_TOML)
        .unwrap_or_else(|e| panic!("embedded hub/config is invalid: {e}"))
});

impl Rules {
    /// The rules shipped in `hub/config/`, parsed once.
    pub fn embedded() -> &'static Rules {
        &EMBEDDED
    }

    /// The shipped rules with any of `units.toml`, `labels.toml`, `checks.toml` found in `dir`
    /// in place of its embedded default.
    pub fn load(dir: &Path) -> Result<Rules, RulesError> {
        let read = |name: &str, default: &'static str| -> Result<String, RulesError> {
            let path = dir.join(name);
            if path.exists() {
                std::fs::read_to_string(&path).map_err(|source| RulesError::Read {
                    file: path.display().to_string(),
                    source,
                })
            } else {
                Ok(default.to_owned())
            }
        };
        Rules::from_toml(
            &read("units.toml", UNITS_TOML)?,
            &read("labels.toml", LABELS_TOML)?,
            &read("checks.toml", CHECKS_TOML)?,
        )
    }

    /// Rules from the three files' texts.
    pub fn from_toml(units: &str, labels: &str, checks: &str) -> Result<Rules, RulesError> {
        let units_file: UnitsFile = parse_toml("units.toml", units)?;
        let labels_file: LabelsFile = parse_toml("labels.toml", labels)?;
        let checks_file: ChecksFile = parse_toml("checks.toml", checks)?;
        let (units, conversions, carriers) = units_file.build()?;
        Ok(Rules {
            units,
            conversions,
            carriers,
            labels: label_sets(labels_file)?,
            checks: checks_file.build()?,
        })
    }

    /// What a reported unit stands for (matched like a label: NFKC, case and spaces ignored).
    pub fn unit(&self, reported: &str) -> Option<&UnitRule> {
        self.units.get(&label_key(reported))
    }

    /// The conversion of `substance` from one canonical unit to another, if configured.
    pub fn conversion(
        &self,
        substance: Substance,
        from: CanonicalUnit,
        to: CanonicalUnit,
    ) -> Option<&Conversion> {
        let find = |s: Substance| {
            self.conversions
                .iter()
                .find(|c| c.substance == s && c.from == from && c.to == to)
        };
        find(substance).or_else(|| find(Substance::Any))
    }

    /// The canonical unit and coefficient of a carrier.
    pub fn carrier(&self, carrier: EnergyCarrier) -> Option<&CarrierRule> {
        self.carriers.get(&carrier)
    }
}

fn parse_toml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, RulesError> {
    toml::from_str(text).map_err(|source| RulesError::Syntax {
        file: file.to_owned(),
        source: Box::new(source),
    })
}

fn invalid(file: &str, what: String) -> RulesError {
    RulesError::Invalid {
        file: file.to_owned(),
        what,
    }
}

fn decimal(file: &str, entry: &str, text: &str) -> Result<Decimal, RulesError> {
    Decimal::from_str(text)
        .ok()
        .filter(|d| d.is_sign_positive() && !d.is_zero())
        .ok_or_else(|| invalid(file, format!("{entry}: `{text}` is not a positive decimal")))
}

/// An enumeration symbol (`"KWH"`, `"GASOLINE"`) as its Rust type, through the type's serde
/// names, so the files use exactly the Avro symbols.
fn symbol<E: DeserializeOwned>(file: &str, entry: &str, text: &str) -> Result<E, RulesError> {
    E::deserialize(text.into_deserializer())
        .map_err(|e: serde::de::value::Error| invalid(file, format!("{entry}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitsFile {
    unit: Vec<UnitEntry>,
    conversion: Vec<ConversionEntry>,
    carrier: BTreeMap<String, CarrierEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitEntry {
    names: Vec<String>,
    canonical: String,
    factor: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversionEntry {
    substance: String,
    from: String,
    to: String,
    factor: String,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CarrierEntry {
    unit: String,
    kgce_per_unit: String,
    source: String,
}

type UnitTables = (
    HashMap<String, UnitRule>,
    Vec<Conversion>,
    HashMap<EnergyCarrier, CarrierRule>,
);

impl UnitsFile {
    fn build(self) -> Result<UnitTables, RulesError> {
        const F: &str = "units.toml";
        let mut units = HashMap::new();
        for u in self.unit {
            let entry = format!("unit {:?}", u.names);
            let canonical = match u.canonical.as_str() {
                "CNY" => Canonical::Yuan,
                other => Canonical::Unit(symbol(F, &entry, other)?),
            };
            let rule = UnitRule {
                canonical,
                factor: decimal(F, &entry, &u.factor)?,
                source: u.source,
            };
            for name in &u.names {
                let key = label_key(name);
                if key.is_empty() {
                    return Err(invalid(
                        F,
                        format!("unit name {name:?} has no letter or digit"),
                    ));
                }
                if units.insert(key, rule.clone()).is_some() {
                    return Err(invalid(F, format!("unit name {name:?} is listed twice")));
                }
            }
        }
        let mut conversions = Vec::new();
        for c in self.conversion {
            let entry = format!("conversion {} {}→{}", c.substance, c.from, c.to);
            let substance = match c.substance.as_str() {
                "WATER" => Substance::Water,
                "ANY" => Substance::Any,
                other => Substance::Carrier(symbol(F, &entry, other)?),
            };
            conversions.push(Conversion {
                substance,
                from: symbol(F, &entry, &c.from)?,
                to: symbol(F, &entry, &c.to)?,
                factor: decimal(F, &entry, &c.factor)?,
                source: c.source,
            });
        }
        let mut carriers = HashMap::new();
        for (name, c) in self.carrier {
            let entry = format!("carrier.{name}");
            carriers.insert(
                symbol(F, &entry, &name)?,
                CarrierRule {
                    unit: symbol(F, &entry, &c.unit)?,
                    kgce_per_unit: decimal(F, &entry, &c.kgce_per_unit)?,
                    source: c.source,
                },
            );
        }
        Ok((units, conversions, carriers))
    }
}

/// `labels.toml`: a table per enumeration, symbol → labels.
type LabelsFile = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn labels<E: DeserializeOwned + Copy + Eq + Hash>(
    file: &mut LabelsFile,
    table: &str,
) -> Result<Labels<E>, RulesError> {
    const F: &str = "labels.toml";
    let entries = file
        .remove(table)
        .ok_or_else(|| invalid(F, format!("table [{table}] is missing")))?;
    let mut by_key = HashMap::new();
    for (sym, names) in entries {
        let value: E = symbol(F, &format!("{table}.{sym}"), &sym)?;
        for name in std::iter::once(&sym).chain(&names) {
            match by_key.insert(label_key(name), value) {
                Some(other) if other != value => {
                    return Err(invalid(
                        F,
                        format!("{table}: label {name:?} stands for two symbols"),
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(Labels { by_key })
}

fn label_sets(mut file: LabelsFile) -> Result<LabelSets, RulesError> {
    // Each field of `LabelSets` is read from the table of the same name.
    macro_rules! sets {
        ($($table:ident),*) => {
            LabelSets { $($table: labels(&mut file, stringify!($table))?,)* }
        };
    }
    let sets = sets!(
        institution_type,
        institution_status,
        vehicle_usage_category,
        vehicle_energy_type,
        vehicle_status,
        energy_carrier,
        cost_item,
        acquisition_mode,
        asset_status,
        asset_category_edition,
        office_space_use,
        official_rank
    );
    match file.keys().next() {
        Some(unknown) => Err(invalid("labels.toml", format!("unknown table [{unknown}]"))),
        None => Ok(sets),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksFile {
    energy_total_tolerance: String,
    confidential_vehicle_max_price_yuan: String,
    confidential_vehicle_max_displacement_l: String,
    earliest_date: String,
    earliest_year: i32,
    earliest_completion_year: i32,
    earliest_fix_time: String,
    fix_time_future_slack_seconds: i64,
    max_speed_kmh: f64,
}

impl ChecksFile {
    fn build(self) -> Result<Checks, RulesError> {
        const F: &str = "checks.toml";
        let positive = |name: &str, text: &str| decimal(F, name, text);
        Ok(Checks {
            energy_total_tolerance: positive(
                "energy_total_tolerance",
                &self.energy_total_tolerance,
            )?,
            confidential_vehicle_max_price_yuan: positive(
                "confidential_vehicle_max_price_yuan",
                &self.confidential_vehicle_max_price_yuan,
            )?,
            confidential_vehicle_max_displacement_l: positive(
                "confidential_vehicle_max_displacement_l",
                &self.confidential_vehicle_max_displacement_l,
            )?,
            earliest_date: NaiveDate::parse_from_str(&self.earliest_date, "%Y-%m-%d")
                .map_err(|e| invalid(F, format!("earliest_date: {e}")))?,
            earliest_year: self.earliest_year,
            earliest_completion_year: self.earliest_completion_year,
            earliest_fix_time: DateTime::parse_from_rfc3339(&self.earliest_fix_time)
                .map_err(|e| invalid(F, format!("earliest_fix_time: {e}")))?
                .with_timezone(&Utc),
            fix_time_future_slack_seconds: self.fix_time_future_slack_seconds,
            max_speed_kmh: self.max_speed_kmh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::records::{AssetStatus, VehicleStatus};

    #[test]
    fn embedded_rules_load() {
        let r = Rules::embedded();
        assert_eq!(r.unit("万千瓦时").unwrap().factor, Decimal::from(10_000));
        assert_eq!(
            r.unit(" kwh ").unwrap().canonical,
            Canonical::Unit(CanonicalUnit::Kwh)
        );
        assert_eq!(r.unit("万元").unwrap().canonical, Canonical::Yuan);
        assert!(r.unit("furlong").is_none());
        let gasoline = Substance::Carrier(EnergyCarrier::Gasoline);
        let c = r
            .conversion(gasoline, CanonicalUnit::L, CanonicalUnit::Kg)
            .unwrap();
        assert_eq!(c.factor, Decimal::from_str("0.73").unwrap());
        assert!(
            r.conversion(Substance::Water, CanonicalUnit::L, CanonicalUnit::M3)
                .is_some(),
            "falls back to ANY"
        );
        // Every carrier of the contract has a coefficient.
        for carrier in [
            EnergyCarrier::Electricity,
            EnergyCarrier::Coal,
            EnergyCarrier::NaturalGas,
            EnergyCarrier::Lpg,
            EnergyCarrier::Gasoline,
            EnergyCarrier::Diesel,
            EnergyCarrier::Kerosene,
            EnergyCarrier::FuelOil,
            EnergyCarrier::Heat,
            EnergyCarrier::Other,
        ] {
            assert!(r.carrier(carrier).is_some(), "{carrier:?}");
        }
        assert_eq!(
            r.labels.institution_type.get("国家机关（市级及以下）"),
            Some(InstitutionType::StateOrganCityAndBelow)
        );
        assert_eq!(
            r.labels.vehicle_usage_category.get("law_enforcement"),
            Some(VehicleUsageCategory::LawEnforcement)
        );
    }

    /// Status labels found in the wild, one line per label: the symbol it must map to.
    #[test]
    fn status_labels_found_in_the_wild() {
        let r = Rules::embedded();
        let vehicle = |l: &str| r.labels.vehicle_status.get(l);
        let asset = |l: &str| r.labels.asset_status.get(l);
        let cases = [
            ("vehicle 停用", vehicle("停用"), Some(VehicleStatus::Idle)),
            ("vehicle 封存", vehicle("封存"), Some(VehicleStatus::Idle)),
            (
                "vehicle 报废",
                vehicle("报废"),
                Some(VehicleStatus::Disposed),
            ),
            (
                "vehicle 待处置",
                vehicle("待处置"),
                Some(VehicleStatus::PendingDisposal),
            ),
            ("vehicle unknown", vehicle("停驶维修"), None),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
        let cases = [
            ("asset 停用", asset("停用"), Some(AssetStatus::Idle)),
            ("asset 封存", asset("封存"), Some(AssetStatus::Idle)),
            ("asset 报废", asset("报废"), Some(AssetStatus::Disposed)),
            (
                "asset 待处置",
                asset("待处置"),
                Some(AssetStatus::PendingDisposal),
            ),
            ("asset unknown", asset("调剂中"), None),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }
    }

    /// Every status label says where it is used: a comment on its line.
    #[test]
    fn status_labels_name_their_source() {
        let mut table = "";
        for line in LABELS_TOML.lines() {
            if let Some(name) = line.strip_prefix('[') {
                table = name.trim_end_matches(']');
            } else if table.ends_with("_status") && !line.contains("OTHER") {
                let label = line.trim_start().starts_with('"') || line.contains("= [\"");
                assert!(!label || line.contains('#'), "[{table}] {line}: no source");
            }
        }
    }

    #[test]
    fn bad_files_name_the_entry() {
        let units = UNITS_TOML.replace("factor = \"0.73\"", "factor = \"zero\"");
        let err = Rules::from_toml(&units, LABELS_TOML, CHECKS_TOML).unwrap_err();
        assert_eq!(err.code(), "rules_invalid");
        assert!(err.to_string().contains("GASOLINE"), "{err}");
        let labels = LABELS_TOML.replace("GASOLINE = [\"汽油\"]", "GASOLINE = [\"柴油\"]");
        let err = Rules::from_toml(UNITS_TOML, &labels, CHECKS_TOML).unwrap_err();
        assert!(err.to_string().contains("two symbols"), "{err}");
        let err = Rules::from_toml(UNITS_TOML, LABELS_TOML, "nonsense = 1").unwrap_err();
        assert_eq!(err.code(), "rules_syntax");
        let labels = format!("{LABELS_TOML}\n[vehicle_colour]\nRED = [\"红\"]\n");
        let err = Rules::from_toml(UNITS_TOML, &labels, CHECKS_TOML).unwrap_err();
        assert!(err.to_string().contains("vehicle_colour"), "{err}");
        let units = UNITS_TOML.replace("canonical = \"GJ\"", "canonical = \"BTU\"");
        let err = Rules::from_toml(&units, LABELS_TOML, CHECKS_TOML).unwrap_err();
        assert!(err.to_string().contains("BTU"), "{err}");
    }
}
