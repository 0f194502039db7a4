//! Co-partitioning: the partition key a connector reads off a raw record
//! ([`schemas::partition::Partitioned`]) is the first component of the entity id the hub
//! gives that record after `process` and `assign_key`, for every spelling a level sends.
//! One line per case: a change to a valid record (the simulator's level differences among
//! them) and whether the hub keys it; then the contract's raw fixtures.

use std::fmt::Debug;

use schemas::partition::{Partitioned, partition_key};

use super::*;
use crate::stages::key::Keyed;
use crate::stages::process;

/// The hub's and the connector's partition key of one record.
type Keys = (Option<String>, Option<String>);

/// The hub's partition key of `raw` (`None` when it quarantines it or cannot key it) and the
/// connector's.
fn keys<R>(raw: R) -> Keys
where
    R: Stage + Partitioned,
    R::National: Keyed,
{
    let connector = raw.partition_key();
    let hub = process(raw, rules()).ok().and_then(|mut accepted| {
        accepted.record.assign_key().ok()?;
        Some(partition_key(accepted.record.entity_id()).to_owned())
    });
    (hub, connector)
}

/// `base` changed by `change`: the hub's and the connector's partition key.
fn changed<R>(base: fn() -> R, change: impl FnOnce(&mut R)) -> Keys
where
    R: Stage + Partitioned,
    R::National: Keyed,
{
    with(base, change, keys)
}

/// A plate in full-width letters and digits, as the simulator's province systems send every
/// third one (`codes::to_full_width`).
fn full_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

#[test]
fn the_connector_s_partition_key_is_the_hub_s() {
    let unit = "530114003002GB00012F00010001";
    // (case, the hub's and the connector's key, the key expected; `None`: the hub refuses it).
    #[rustfmt::skip]
    let cases: Vec<(&str, Keys, Option<&str>)> = vec![
        ("institution", changed(institution, |_| {}), Some(USCC)),
        ("institution, spaces", changed(institution, |r| r.uscc = " 11530114015117404 9".into()), Some(USCC)),
        ("institution, lower case", changed(institution, |r| r.uscc = "11530102015117404w".into()), Some(USCC_WUHUA)),
        ("institution, full width", changed(institution, |r| r.uscc = full_width(USCC)), Some(USCC)),
        ("institution, dashes", changed(institution, |r| r.uscc = "1153-0114-0151174049".into()), Some(USCC)),
        ("institution, check character", changed(institution, |r| r.uscc = "115301140151174048".into()), None),
        ("vehicle", changed(vehicle, |_| {}), Some(VIN)),
        ("vehicle, VIN lower case", changed(vehicle, |r| r.vin = s(&VIN.to_lowercase())), Some(VIN)),
        ("vehicle, VIN full width", changed(vehicle, |r| r.vin = s(&full_width(VIN))), Some(VIN)),
        ("vehicle, plate with a dot (prefecture)", changed(vehicle, |r| r.plate = s("云A·12345")), Some(VIN)),
        ("vehicle, VIN invalid", changed(vehicle, |r| r.vin = s("LSVAM4187C2184848")), None),
        ("vehicle, no VIN", changed(vehicle, |r| r.vin = None), Some("云A12345")),
        ("vehicle, blank VIN", changed(vehicle, |r| r.vin = s(" ")), Some("云A12345")),
        ("vehicle, no VIN, plate with a dot", changed(vehicle, |r| { r.vin = None; r.plate = s("云A·12345") }), Some("云A12345")),
        ("vehicle, no VIN, plate full width", changed(vehicle, |r| { r.vin = None; r.plate = s(&full_width("云A12345")) }), Some("云A12345")),
        ("vehicle, no VIN, traditional, lower case", changed(vehicle, |r| { r.vin = None; r.plate = s("雲a 12345") }), Some("云A12345")),
        ("vehicle, no VIN, O in the serial", changed(vehicle, |r| { r.vin = None; r.plate = s("云A1234O") }), Some("云A12340")),
        ("vehicle, no VIN, no plate", changed(vehicle, |r| { r.vin = None; r.plate = s("云A1234") }), None),
        ("position", changed(position, |_| {}), Some(VIN)),
        ("position, plate full width (province)", changed(position, |r| r.plate = s(&full_width("云A12345"))), Some(VIN)),
        ("position, VIN lower case", changed(position, |r| r.vin = s(&VIN.to_lowercase())), Some(VIN)),
        ("position, no VIN, plate with a dot", changed(position, |r| { r.vin = None; r.plate = s("云A·12345") }), Some("云A12345")),
        ("position, no VIN, plate full width", changed(position, |r| { r.vin = None; r.plate = s(&full_width("云A12345")) }), Some("云A12345")),
        ("position, terminal only", changed(position, |r| { r.vin = None; r.plate = None }), None),
        ("position, VIN invalid", changed(position, |r| r.vin = s("LSVAM4187C218484")), None),
        ("quota", changed(quota, |_| {}), Some(USCC)),
        ("quota, full width", changed(quota, |r| r.owner_uscc = full_width(USCC)), Some(USCC)),
        ("building", changed(building, |_| {}), Some(unit)),
        ("building, number lower case and spaced", changed(building, |r| r.property_unit_number = s("530114 003002 gb00012 f0001 0001")), Some(unit)),
        ("building, number full width", changed(building, |r| r.property_unit_number = s(&full_width(unit))), Some(unit)),
        ("building, number malformed", changed(building, |r| r.property_unit_number = s("530114003002GB0001")), Some(USCC)),
        ("building, no number", changed(building, |r| r.property_unit_number = None), Some(USCC)),
        ("building, no number, owner full width", changed(building, |r| { r.property_unit_number = None; r.owner_uscc = full_width(USCC) }), Some(USCC)),
        ("energy", changed(energy, |_| {}), Some(USCC)),
        ("energy, spaces", changed(energy, |r| r.uscc = "11530114015117404 9".into()), Some(USCC)),
        ("asset", changed(asset, |_| {}), Some(USCC)),
        ("asset, full width", changed(asset, |r| r.owner_uscc = full_width(USCC)), Some(USCC)),
        ("cost", changed(cost, |_| {}), Some(USCC)),
        ("cost, spaces", changed(cost, |r| r.uscc = " 115301140151174049\u{3000}".into()), Some(USCC)),
    ];
    for (case, (hub, connector), want) in cases {
        let want = want.map(str::to_owned);
        assert_eq!((&hub, &connector), (&want, &want), "{case}");
    }
}

/// Every valid raw fixture of the contract that the hub keys gets the hub's partition key
/// from the connector too.
fn fixtures<R>(name: &str) -> usize
where
    R: Stage + Partitioned + serde::de::DeserializeOwned + Debug,
    R::National: Keyed,
{
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/fixtures")
        .join(name)
        .join("valid");
    let mut keyed = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("fixture").path();
        let text = std::fs::read_to_string(&path).expect("fixture text");
        let raw: R = serde_json::from_str(&text).expect("a raw record");
        let (hub, connector) = keys(raw);
        if hub.is_some() {
            keyed += 1;
            assert_eq!(connector, hub, "{}", path.display());
        }
    }
    keyed
}

#[test]
fn the_contract_s_fixtures_partition_as_the_hub_keys_them() {
    let keyed = [
        fixtures::<RawInstitution>("huitong.raw.Institution"),
        fixtures::<RawVehicle>("huitong.raw.Vehicle"),
        fixtures::<RawVehiclePosition>("huitong.raw.VehiclePosition"),
        fixtures::<RawVehicleQuota>("huitong.raw.VehicleQuota"),
        fixtures::<RawOfficeBuilding>("huitong.raw.OfficeBuilding"),
        fixtures::<RawEnergyReport>("huitong.raw.EnergyReport"),
        fixtures::<RawAssetCard>("huitong.raw.AssetCard"),
        fixtures::<RawOperatingCost>("huitong.raw.OperatingCost"),
    ];
    assert!(
        keyed.iter().all(|&n| n > 0),
        "every domain has a fixture the hub keys: {keyed:?}"
    );
}
