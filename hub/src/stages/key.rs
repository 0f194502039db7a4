//! Key (主键生成): the stable national entity id of a normalised record (DOMAIN.md §2), which
//! every report of the same entity shares whichever level sent it. It is the Kafka key of the
//! repartition and national topics, so all reports of one entity meet in one partition.
//!
//! | domain | entity id |
//! |---|---|
//! | institution | USCC |
//! | vehicle | VIN, else `<plate>|<owner USCC>` |
//! | vehicle position | `<vehicle>|<fix time, epoch ms rounded to the second>`; the vehicle is the VIN, else the plate |
//! | vehicle quota | `<owner USCC>|<year>|<category>` |
//! | office building | property unit number (不动产单元号), else `<owner USCC>|<normalised address>` |
//! | energy report | `<USCC>|<period>` |
//! | asset card | `<owner USCC>|<asset code>` |
//! | operating cost | `<USCC>|<year>` |
//!
//! Positions are keyed to the second: platforms relaying one GPS fix round its time
//! differently, within the ±1 s DOMAIN.md allows.

use schemas::records::{
    NationalAssetCard, NationalEnergyReport, NationalInstitution, NationalOfficeBuilding,
    NationalOperatingCost, NationalVehicle, NationalVehiclePosition, NationalVehicleQuota,
    QuarantineStage,
};

use super::{Finding, Rule, Severity};

/// The record has none of the fields its entity id is made of.
pub static KEY_MISSING: Rule = Rule {
    code: "entity_key_missing",
    severity: Severity::Error,
    stage: QuarantineStage::Key,
    zh: "无法确定实体标识",
    en: "the entity id cannot be formed",
};

/// A national record whose entity id the key stage sets.
pub trait Keyed {
    /// Sets `entity_id` (and what it is made of, such as a position's vehicle), or says which
    /// fields are missing.
    fn assign_key(&mut self) -> Result<(), Finding>;

    /// The entity id, once assigned.
    fn entity_id(&self) -> &str;
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn missing(fields: &str) -> Finding {
    Finding::new(&KEY_MISSING, fields, format!("缺少 {fields}"))
}

fn nonempty(value: &str, fields: &str) -> Result<(), Finding> {
    if value.trim().is_empty() {
        Err(missing(fields))
    } else {
        Ok(())
    }
}

macro_rules! keyed {
    ($national:ty, |$r:ident| $key:expr) => {
        impl Keyed for $national {
            fn assign_key(&mut self) -> Result<(), Finding> {
                let $r = &mut *self;
                let key: Result<String, Finding> = $key;
                self.entity_id = key?;
                Ok(())
            }

            fn entity_id(&self) -> &str {
                &self.entity_id
            }
        }
    };
}

keyed!(NationalInstitution, |r| {
    nonempty(&r.uscc, "uscc")?;
    Ok(r.uscc.clone())
});

keyed!(
    NationalVehicle,
    |r| match (present(&r.vin), present(&r.plate)) {
        (Some(vin), _) => Ok(vin.to_owned()),
        (None, Some(plate)) => {
            nonempty(&r.owner_uscc, "owner_uscc")?;
            Ok(format!("{plate}|{}", r.owner_uscc))
        }
        (None, None) => Err(missing("vin, plate")),
    }
);

keyed!(NationalVehiclePosition, |r| {
    if r.vehicle_entity_id.trim().is_empty() {
        r.vehicle_entity_id = present(&r.plate)
            .ok_or_else(|| missing("vin, plate"))?
            .to_owned();
    }
    let millis = r.fix_time.timestamp_millis();
    // Nearest whole second: fixes relayed within ±0.5 s of each other share a key.
    let second = (millis + 500).div_euclid(1000) * 1000;
    Ok(format!("{}|{second}", r.vehicle_entity_id))
});

keyed!(NationalVehicleQuota, |r| {
    nonempty(&r.owner_uscc, "owner_uscc")?;
    let category = serde_json::to_value(r.usage_category)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    Ok(format!("{}|{}|{category}", r.owner_uscc, r.year))
});

keyed!(NationalOfficeBuilding, |r| match (
    present(&r.property_unit_number),
    present(&r.normalised_address)
) {
    (Some(unit), _) => Ok(unit.to_owned()),
    (None, Some(address)) => {
        nonempty(&r.owner_uscc, "owner_uscc")?;
        Ok(format!("{}|{address}", r.owner_uscc))
    }
    (None, None) => Err(missing("property_unit_number, address")),
});

keyed!(NationalEnergyReport, |r| {
    nonempty(&r.uscc, "uscc")?;
    nonempty(&r.period, "period")?;
    Ok(format!("{}|{}", r.uscc, r.period))
});

keyed!(NationalAssetCard, |r| {
    nonempty(&r.owner_uscc, "owner_uscc")?;
    nonempty(&r.asset_code, "asset_code")?;
    Ok(format!("{}|{}", r.owner_uscc, r.asset_code))
});

keyed!(NationalOperatingCost, |r| {
    nonempty(&r.uscc, "uscc")?;
    Ok(format!("{}|{}", r.uscc, r.year))
});

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::records::{GeodeticDatum, VehicleUsageCategory};
    use serde_json::json;

    /// A national record of type `T` from the JSON form, envelope filled in.
    fn record<T: serde::de::DeserializeOwned>(fields: serde_json::Value) -> T {
        let mut value = json!({
            "entity_id": "",
            "contributions": [],
            "conflicts": [],
            "warnings": [],
            "revision": 0,
            "updated_at": "2025-03-01T00:00:00.000Z",
        });
        for (k, v) in fields.as_object().expect("object") {
            value[k] = v.clone();
        }
        serde_json::from_value(value).expect("a record of the type")
    }

    fn key<T: Keyed>(mut r: T) -> Result<String, &'static str> {
        r.assign_key().map_err(|f| f.code)?;
        Ok(r.entity_id().to_owned())
    }

    #[test]
    fn vehicles() {
        let base = json!({"owner_uscc": "11530114015162553X", "plate_corrected": false});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            for (k, x) in extra.as_object().expect("object") {
                v[k] = x.clone();
            }
            record::<NationalVehicle>(v)
        };
        let cases = [
            (
                json!({"vin": "LSVAU2180N2183294", "plate": "云A12345"}),
                Ok("LSVAU2180N2183294"),
            ),
            (
                json!({"vin": "  ", "plate": "云A12345"}),
                Ok("云A12345|11530114015162553X"),
            ),
            (
                json!({"plate": "云A12345"}),
                Ok("云A12345|11530114015162553X"),
            ),
            (json!({}), Err("entity_key_missing")),
        ];
        for (fields, want) in cases {
            assert_eq!(
                key(with(fields.clone())).as_deref(),
                want.map(str::to_owned).as_deref(),
                "{fields}"
            );
        }
    }

    #[test]
    fn positions_round_to_the_second_and_fall_back_to_the_plate() {
        let position = |vehicle: &str, plate: Option<&str>, time: &str| {
            let mut r: NationalVehiclePosition = record(json!({
                "vehicle_entity_id": vehicle,
                "plate": plate,
                "fix_time": time,
                "latitude": 25.0,
                "longitude": 102.7,
                "source_datum": "WGS84",
            }));
            r.source_datum = GeodeticDatum::Wgs84;
            r
        };
        let cases = [
            (
                position("LSVAU2180N2183294", None, "2025-03-01T08:00:00.000Z"),
                Ok("LSVAU2180N2183294|1740816000000"),
            ),
            (
                position("LSVAU2180N2183294", None, "2025-03-01T08:00:00.400Z"),
                Ok("LSVAU2180N2183294|1740816000000"),
            ),
            (
                position("LSVAU2180N2183294", None, "2025-03-01T07:59:59.600Z"),
                Ok("LSVAU2180N2183294|1740816000000"),
            ),
            (
                position("", Some("云A12345"), "2025-03-01T08:00:01.000Z"),
                Ok("云A12345|1740816001000"),
            ),
            (
                position("", None, "2025-03-01T08:00:01.000Z"),
                Err("entity_key_missing"),
            ),
        ];
        for (i, (r, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                key(r).as_deref(),
                want.map(str::to_owned).as_deref(),
                "case {i}"
            );
        }
    }

    #[test]
    fn reports_registries_and_buildings() {
        let quota: NationalVehicleQuota = record(json!({
            "owner_uscc": "11530114015162553X", "year": 2025,
            "usage_category": "LAW_ENFORCEMENT",
        }));
        let quota_key = key(quota.clone());
        let category = serde_json::to_value(quota.usage_category).expect("json");
        assert_eq!(
            quota_key,
            Ok(format!(
                "11530114015162553X|2025|{}",
                category.as_str().expect("symbol")
            ))
        );
        assert_ne!(
            quota.usage_category,
            VehicleUsageCategory::ConfidentialCommunication
        );

        let energy: NationalEnergyReport = record(json!({
            "uscc": "11530114015162553X", "period": "2025-03", "period_type": "MONTH",
            "period_start": "2025-03-01", "period_end": "2025-03-31", "lines": [],
            "total_energy": {"value": "0", "unit": "KGCE", "raw_value": null, "raw_unit": null},
        }));
        assert_eq!(key(energy).as_deref(), Ok("11530114015162553X|2025-03"));

        let building = |unit: Option<&str>, address: Option<&str>| -> NationalOfficeBuilding {
            record(json!({
                "owner_uscc": "11530114015162553X",
                "property_unit_number": unit,
                "normalised_address": address,
                "areas": [], "rooms": [],
            }))
        };
        assert_eq!(
            key(building(
                Some("530114001001GB00001F00010001"),
                Some("呈贡区1号")
            ))
            .as_deref(),
            Ok("530114001001GB00001F00010001")
        );
        assert_eq!(
            key(building(None, Some("呈贡区1号"))).as_deref(),
            Ok("11530114015162553X|呈贡区1号")
        );
        assert_eq!(key(building(None, None)), Err("entity_key_missing"));
    }
}
