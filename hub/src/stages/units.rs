//! Amounts as reported (`RawQuantity`: value text + unit text) → canonical units, with the
//! factors and conversions of [`Rules`]. Exact decimal arithmetic throughout (rust_decimal);
//! results are rounded half away from zero to the contract's scale only at the end:
//! quantities to 6 decimals, money to 2.

use rust_decimal::Decimal;
use schemas::logical::DecimalShape;
use schemas::records::{CanonicalUnit, Money, Quantity, RawQuantity};

use super::rules::{Canonical, Conversion, Rules, Substance};
use super::text;

/// Why an amount could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitError {
    /// The value is not a number.
    Malformed,
    /// The value is below zero.
    Negative(Decimal),
    /// The unit is missing or not in `units.toml`.
    UnknownUnit(String),
    /// The unit is known but measures something else (m³ where kWh is due), and no
    /// conversion for the substance is configured.
    Incompatible {
        /// The unit as reported.
        unit: String,
        /// What it measures.
        canonical: Canonical,
    },
    /// Too large for the contract's decimal shape.
    OutOfRange,
}

/// An amount in its canonical unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<'r> {
    /// The value, rounded to the contract's scale.
    pub value: Decimal,
    /// Half the last reported digit, in the canonical unit: how far the source's own rounding
    /// may have moved the value (cross-checks allow this much).
    pub half_ulp: Decimal,
    /// The substance conversion applied, if any (litres of gasoline → kg).
    pub via: Option<&'r Conversion>,
}

/// Symbol of a canonical unit for messages and coefficient sources.
pub fn symbol(unit: Canonical) -> &'static str {
    match unit {
        Canonical::Unit(CanonicalUnit::Kwh) => "kWh",
        Canonical::Unit(CanonicalUnit::Kgce) => "kgce",
        Canonical::Unit(CanonicalUnit::M3) => "m³",
        Canonical::Unit(CanonicalUnit::Kg) => "kg",
        Canonical::Unit(CanonicalUnit::Gj) => "GJ",
        Canonical::Unit(CanonicalUnit::M2) => "m²",
        Canonical::Unit(CanonicalUnit::L) => "L",
        Canonical::Unit(CanonicalUnit::Km) => "km",
        Canonical::Yuan => "元",
    }
}

/// Converts `raw` to `target`. A value with an empty unit may carry its unit after the number
/// (`1.8L`, `54.11万元`); a unit that measures another dimension is converted only through a
/// conversion configured for `substance`.
pub fn convert<'r>(
    raw: &RawQuantity,
    target: Canonical,
    substance: Substance,
    rules: &'r Rules,
) -> Result<Converted<'r>, UnitError> {
    let (number, unit) = if raw.unit.trim().is_empty() {
        text::split_number_unit(&raw.value).ok_or(UnitError::Malformed)?
    } else {
        (raw.value.clone(), raw.unit.clone())
    };
    let (value, scale) = text::decimal(&number).ok_or(UnitError::Malformed)?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(UnitError::Negative(value));
    }
    let rule = rules
        .unit(&unit)
        .ok_or_else(|| UnitError::UnknownUnit(unit.clone()))?;
    // 28 decimals is rust_decimal's limit; a text that long has no rounding worth allowing.
    let half_ulp = Decimal::try_new(5, scale + 1).unwrap_or(Decimal::ZERO);
    let mut value = value
        .checked_mul(rule.factor)
        .ok_or(UnitError::OutOfRange)?;
    let mut half_ulp = half_ulp * rule.factor;
    let mut via = None;
    if rule.canonical != target {
        let incompatible = || UnitError::Incompatible {
            unit: unit.clone(),
            canonical: rule.canonical,
        };
        let (Canonical::Unit(from), Canonical::Unit(to)) = (rule.canonical, target) else {
            return Err(incompatible());
        };
        let conversion = rules
            .conversion(substance, from, to)
            .ok_or_else(incompatible)?;
        value = value
            .checked_mul(conversion.factor)
            .ok_or(UnitError::OutOfRange)?;
        half_ulp *= conversion.factor;
        via = Some(conversion);
    }
    let shape = match target {
        Canonical::Yuan => DecimalShape::MONEY,
        Canonical::Unit(_) => DecimalShape::QUANTITY,
    };
    Ok(Converted {
        value: shape.round(value).map_err(|_| UnitError::OutOfRange)?,
        half_ulp,
        via,
    })
}

/// `raw` as a national [`Quantity`] in `unit`, keeping the reported value and unit.
pub fn quantity<'r>(
    raw: &RawQuantity,
    unit: CanonicalUnit,
    substance: Substance,
    rules: &'r Rules,
) -> Result<(Quantity, Converted<'r>), UnitError> {
    let c = convert(raw, Canonical::Unit(unit), substance, rules)?;
    Ok((
        Quantity {
            value: c.value,
            unit,
            raw_value: Some(raw.value.clone()),
            raw_unit: Some(raw.unit.clone()),
        },
        c,
    ))
}

/// `raw` as national [`Money`] in yuan, keeping the reported value and unit.
pub fn money<'r>(raw: &RawQuantity, rules: &'r Rules) -> Result<(Money, Converted<'r>), UnitError> {
    let c = convert(raw, Canonical::Yuan, Substance::Any, rules)?;
    Ok((
        Money {
            value: c.value,
            raw_value: Some(raw.value.clone()),
            raw_unit: Some(raw.unit.clone()),
        },
        c,
    ))
}

/// Half the last reported digit of an amount already on a national record, in yuan or its
/// canonical unit (0 when the hub computed it): the tolerance its source's rounding allows.
pub fn reported_half_ulp(
    raw_value: Option<&str>,
    raw_unit: Option<&str>,
    rules: &Rules,
) -> Decimal {
    let (Some(value), Some(unit)) = (raw_value, raw_unit) else {
        return Decimal::ZERO;
    };
    let unit_text = if unit.trim().is_empty() {
        text::split_number_unit(value).map(|(_, u)| u)
    } else {
        Some(unit.to_owned())
    };
    let raw = RawQuantity {
        value: value.to_owned(),
        unit: unit.to_owned(),
    };
    unit_text
        .and_then(|u| rules.unit(&u))
        .and_then(|rule| convert(&raw, rule.canonical, Substance::Any, rules).ok())
        .map_or(Decimal::ZERO, |c| c.half_ulp)
}
