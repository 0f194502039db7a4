//! Typed Rust records of the Avro contract: one struct or enum per Avro record or enum, with
//! field names identical to the Avro field names, so that apache-avro's schema-aware serde
//! writes and reads them directly.
//!
//! Mapping rules: `["null", T]` unions are `Option<T>`, arrays are `Vec<T>`, enums are Rust
//! enums whose serde names are the Avro symbols, and logical types go through the adapters in
//! [`crate::logical`]. `#[serde(default)]` sits exactly where the Avro field has a default, so
//! the JSON form (used by fixtures and tools) accepts what Avro readers would fill in.
//! Top-level records implement [`Record`](crate::contract::Record); the raw form of a domain is
//! `Raw<Type>`, its national form `National<Type>`.

pub mod asset_card;
pub mod catalogue;
pub mod common;
pub mod energy_report;
pub mod institution;
pub mod office_building;
pub mod operating_cost;
pub mod quarantine;
pub mod vehicle;
pub mod vehicle_position;
pub mod vehicle_quota;

#[cfg(test)]
mod tests;

pub use asset_card::{NationalAssetCard, RawAssetCard};
pub use catalogue::{
    CatalogueEntry, DataItem, Freshness, ResourceClassification, ResourceFormatCategory, ShareType,
    UpdateCycle,
};
pub use common::{
    AcquisitionMode, AssetCategoryEdition, AssetStatus, CanonicalUnit, Conflict, ConflictValue,
    CostItem, DataDomain, EnergyCarrier, GeodeticDatum, InstitutionStatus, InstitutionType, Money,
    OfficeSpaceUse, OfficialRank, PeriodType, Provenance, Quantity, RawQuantity, Region,
    RegionLevel, ReportingLevel, SurvivorshipRule, VehicleEnergyType, VehicleStatus,
    VehicleUsageCategory,
};
pub use energy_report::{NationalEnergyLine, NationalEnergyReport, RawEnergyLine, RawEnergyReport};
pub use institution::{NationalInstitution, RawInstitution};
pub use office_building::{
    NationalOfficeArea, NationalOfficeBuilding, NationalOfficeOccupant, NationalOfficeRoom,
    RawOfficeArea, RawOfficeBuilding, RawOfficeOccupant, RawOfficeRoom,
};
pub use operating_cost::{NationalCostLine, NationalOperatingCost, RawCostLine, RawOperatingCost};
pub use quarantine::{Quarantine, QuarantineStage};
pub use vehicle::{NationalVehicle, RawVehicle};
pub use vehicle_position::{NationalVehiclePosition, RawVehiclePosition};
pub use vehicle_quota::{NationalVehicleQuota, RawVehicleQuota};
