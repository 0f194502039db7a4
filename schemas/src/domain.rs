//! The data domains of government-affairs administration (机关事务) that Huitong exchanges.

use std::fmt;
use std::str::FromStr;

/// One data domain. Each has a raw topic (what regions report) and a national topic (the
/// normalised, de-duplicated record per entity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// Directory of public institutions (公共机构名录库), keyed by USCC.
    Institution,
    /// Official-vehicle ledger (公务用车).
    Vehicle,
    /// GPS points of official vehicles (轨迹): the high-volume stream.
    VehiclePosition,
    /// Vehicle quota and actual count per unit and category (编制数 / 实有数).
    VehicleQuota,
    /// Office buildings with rooms and occupants (办公用房).
    OfficeBuilding,
    /// Energy and water consumption reports of public institutions (公共机构能源资源消费统计).
    EnergyReport,
    /// State-asset cards of administrative and public institutions (行政事业性国有资产).
    AssetCard,
    /// Operating-cost statistics of government bodies (机关运行成本).
    OperatingCost,
}

impl Domain {
    /// Every domain, in a fixed order.
    pub const ALL: [Domain; 8] = [
        Domain::Institution,
        Domain::Vehicle,
        Domain::VehiclePosition,
        Domain::VehicleQuota,
        Domain::OfficeBuilding,
        Domain::EnergyReport,
        Domain::AssetCard,
        Domain::OperatingCost,
    ];

    /// The domain's name as used in topic names and metric labels (kebab-case: Kafka treats
    /// `.` and `_` alike in metric names, so mixing them could make two topics collide).
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Institution => "institution",
            Domain::Vehicle => "vehicle",
            Domain::VehiclePosition => "vehicle-position",
            Domain::VehicleQuota => "vehicle-quota",
            Domain::OfficeBuilding => "office-building",
            Domain::EnergyReport => "energy-report",
            Domain::AssetCard => "asset-card",
            Domain::OperatingCost => "operating-cost",
        }
    }

    /// Whether the domain is a high-volume stream rather than periodic reports and registries;
    /// streams get more partitions.
    pub const fn is_stream(self) -> bool {
        matches!(self, Domain::VehiclePosition)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown domain `{0}` (known: institution, vehicle, vehicle-position, vehicle-quota, office-building, energy-report, asset-card, operating-cost)"
)]
pub struct UnknownDomain(pub String);

impl FromStr for Domain {
    type Err = UnknownDomain;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDomain(s.to_owned()))
    }
}

impl<'de> serde::Deserialize<'de> for Domain {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Domain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Domain::ALL {
            assert_eq!(d.as_str().parse::<Domain>(), Ok(d));
        }
        assert!("vehicle_position".parse::<Domain>().is_err());
    }
}
