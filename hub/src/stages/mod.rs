//! The hub's pure stages: decode → **validate** → **normalise** → key → resolve → publish.
//! Nothing here touches Kafka or the file system (except [`Rules::load`], which the binary
//! calls once at start-up); every function is a pure function of its inputs, tested with
//! tables of inputs and expected outputs.
//!
//! The consume–transform–produce loop calls, per decoded raw record:
//!
//! ```
//! # use hub::stages::{process, Rules};
//! # fn f(raw: schemas::records::RawVehicle) {
//! match process(raw, Rules::embedded()) {
//!     Ok(accepted) => { /* accepted.record: NationalVehicle → key → resolve */ }
//!     Err(rejected) => { /* hub.quarantine: rejected.stage, rejected.error_code(), rejected.message() */ }
//! }
//! # }
//! ```
//!
//! [`validate`] and [`normalise`] are the two stages on their own, for tools and tests; the
//! loop uses [`process`], which does both in one pass. Every raw type of the contract
//! implements [`Stage`].
//!
//! **What normalise hands on.** The national record type of the domain, holding one report:
//! `contributions` = `[provenance]`, `conflicts` empty, `warnings` = the validate stage's
//! warnings (`CODE: 中文说明 (English)`), `revision` 0 and `updated_at` = when the connector
//! received the report. `entity_id` (and a position's `vehicle_entity_id` when the report
//! carries no VIN) is left empty: computing it is the key stage's job. Resolve sets
//! `revision`, the publisher `updated_at`.
//!
//! - [`rules`]: [`Rules`], the configuration (`hub/config/*.toml`, embedded as defaults).
//! - [`validate`](mod@validate): the findings ([`Rule`]s with stable codes and a severity —
//!   the table is in that module's documentation), the field readers that report them, and
//!   the cross-field checks.
//! - [`normalise`](mod@normalise): the domain-by-domain mapping of raw records to national
//!   ones.
//! - [`text`], [`units`]: reading text, numbers, dates and units; converting amounts.
//! - [`key`], [`resolve`]: the entity id of a normalised record, and merging every report of
//!   one entity into its national record.

pub mod key;
pub mod normalise;
pub mod resolve;
pub mod rules;
pub mod text;
pub mod units;
pub mod validate;

#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use schemas::records::{
    NationalAssetCard, NationalEnergyReport, NationalInstitution, NationalOfficeBuilding,
    NationalOperatingCost, NationalVehicle, NationalVehiclePosition, NationalVehicleQuota,
    Provenance, QuarantineStage, RawAssetCard, RawEnergyReport, RawInstitution, RawOfficeBuilding,
    RawOperatingCost, RawVehicle, RawVehiclePosition, RawVehicleQuota,
};

pub use rules::Rules;
pub use validate::Checker;

/// Whether a finding stops the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Recorded on the national record (`warnings`); the record is published.
    Warning,
    /// The record is quarantined (`hub.quarantine`) and not published.
    Error,
}

impl Severity {
    /// `warning` or `error`, for metrics and the rule table.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A check the hub makes: a stable code, what failing it means, and its text.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable code, lower snake case (`uscc_check_character`): the quarantine record's
    /// `error_code` and a metric label. Never reused for another meaning.
    pub code: &'static str,
    /// Warning or error, fixed per rule.
    pub severity: Severity,
    /// The stage a quarantined record is attributed to.
    pub stage: QuarantineStage,
    /// What failed, in Chinese.
    pub zh: &'static str,
    /// What failed, in English.
    pub en: &'static str,
}

/// One failed check on one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule's stable code.
    pub code: &'static str,
    /// Warning or error.
    pub severity: Severity,
    /// The stage a quarantine is attributed to.
    pub stage: QuarantineStage,
    /// Path of the field in the raw record (`plate`, `lines.0.amount`).
    pub field: String,
    /// For people, Chinese first: `号牌号码格式错误 (plate malformed): 「云A1234」…`.
    pub message: String,
}

impl Finding {
    /// A finding of `rule` on `field`; `detail` (Chinese, with the value as reported) follows
    /// the rule's text.
    pub fn new(rule: &'static Rule, field: &str, detail: impl fmt::Display) -> Self {
        let detail = detail.to_string();
        let message = if detail.is_empty() {
            format!("{} ({})", rule.zh, rule.en)
        } else {
            format!("{} ({}): {detail}", rule.zh, rule.en)
        };
        Finding {
            code: rule.code,
            severity: rule.severity,
            stage: rule.stage,
            field: field.to_owned(),
            message,
        }
    }

    /// The form national records carry in `warnings`: `CODE: message`.
    pub fn warning_text(&self) -> String {
        format!("{}: {}", self.code.to_ascii_uppercase(), self.message)
    }
}

/// What validation found on one record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Findings recorded on the published record.
    pub warnings: Vec<Finding>,
    /// Findings that quarantine the record.
    pub errors: Vec<Finding>,
}

impl Outcome {
    /// Files a finding by its severity.
    pub fn push(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Warning => self.warnings.push(finding),
            Severity::Error => self.errors.push(finding),
        }
    }

    /// Whether the record may be published.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every code found, errors first: for tests and logs.
    pub fn codes(&self) -> Vec<&'static str> {
        self.errors
            .iter()
            .chain(&self.warnings)
            .map(|f| f.code)
            .collect()
    }
}

/// A record that passed, in national form, with the warnings recorded on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted<N> {
    /// The national record holding this one report (see the module docs).
    pub record: N,
    /// The warnings, as findings (the record carries them as text).
    pub warnings: Vec<Finding>,
}

/// A record that goes to quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stage of the first error.
    pub stage: QuarantineStage,
    /// Every error (at least one).
    pub errors: Vec<Finding>,
    /// The warnings found as well.
    pub warnings: Vec<Finding>,
}

impl Rejection {
    /// The first error's code: the quarantine record's `error_code`.
    pub fn error_code(&self) -> &'static str {
        self.errors[0].code
    }

    /// The first error's field: the quarantine record's `field`.
    pub fn field(&self) -> &str {
        &self.errors[0].field
    }

    /// Every error's message, one per line: the quarantine record's `message`.
    pub fn message(&self) -> String {
        self.errors
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A raw record type the stages handle. Implemented for the eight raw types of the contract.
pub trait Stage: Sized {
    /// The domain's national record type.
    type National;

    /// Where the report came from.
    fn provenance(&self) -> &Provenance;

    /// Reads every field into national form, reporting what fails to `checker`; `None` when
    /// a required field failed (an error was reported).
    fn read(&self, checker: &mut Checker<'_>) -> Option<Self::National>;

    /// The cross-field checks, on the national form (canonical units).
    fn cross_check(national: &Self::National, checker: &mut Checker<'_>);

    /// The record's `warnings` field.
    fn warnings_mut(national: &mut Self::National) -> &mut Vec<String>;
}

macro_rules! stage {
    ($raw:ty => $national:ty, $read:path, $check:path) => {
        impl Stage for $raw {
            type National = $national;

            fn provenance(&self) -> &Provenance {
                &self.provenance
            }

            fn read(&self, checker: &mut Checker<'_>) -> Option<$national> {
                $read(self, checker)
            }

            fn cross_check(national: &$national, checker: &mut Checker<'_>) {
                $check(national, checker)
            }

            fn warnings_mut(national: &mut $national) -> &mut Vec<String> {
                &mut national.warnings
            }
        }
    };
}

stage!(RawInstitution => NationalInstitution, normalise::institution, validate::institution);
stage!(RawVehicle => NationalVehicle, normalise::vehicle, validate::vehicle);
stage!(RawVehiclePosition => NationalVehiclePosition, normalise::vehicle_position, validate::vehicle_position);
stage!(RawVehicleQuota => NationalVehicleQuota, normalise::vehicle_quota, validate::vehicle_quota);
stage!(RawOfficeBuilding => NationalOfficeBuilding, normalise::office_building, validate::office_building);
stage!(RawEnergyReport => NationalEnergyReport, normalise::energy_report, validate::energy_report);
stage!(RawAssetCard => NationalAssetCard, normalise::asset_card, validate::asset_card);
stage!(RawOperatingCost => NationalOperatingCost, normalise::operating_cost, validate::operating_cost);

/// Reads and checks `raw` once: the national record if it has one, and the findings.
fn run<R: Stage>(raw: &R, rules: &Rules) -> (Option<R::National>, Outcome) {
    let mut checker = Checker::new(rules, raw.provenance());
    let national = raw.read(&mut checker);
    if let Some(n) = &national {
        R::cross_check(n, &mut checker);
    }
    (national, checker.into_outcome())
}

/// The validate stage: every finding on `raw`.
pub fn validate<R: Stage>(raw: &R, rules: &Rules) -> Outcome {
    run(raw, rules).1
}

/// The normalise stage: `raw` in national form with its warnings recorded, or the first error
/// (the stage never hands on a record validation rejects).
pub fn normalise<R: Stage>(raw: R, rules: &Rules) -> Result<R::National, Finding> {
    process(raw, rules)
        .map(|a| a.record)
        .map_err(|mut r| r.errors.swap_remove(0))
}

/// Validate and normalise in one pass: what the pipeline calls.
pub fn process<R: Stage>(raw: R, rules: &Rules) -> Result<Accepted<R::National>, Rejection> {
    match run(&raw, rules) {
        (Some(mut record), outcome) if outcome.is_ok() => {
            *R::warnings_mut(&mut record) =
                outcome.warnings.iter().map(Finding::warning_text).collect();
            Ok(Accepted {
                record,
                warnings: outcome.warnings,
            })
        }
        (_, outcome) => {
            // `read` returns `None` only after reporting an error; the fallback covers a
            // reader that forgets, so a record is never lost without a reason.
            let errors = if outcome.errors.is_empty() {
                vec![Finding::new(
                    &validate::INTERNAL,
                    "",
                    "读取失败但未给出原因",
                )]
            } else {
                outcome.errors
            };
            Err(Rejection {
                stage: errors[0].stage,
                errors,
                warnings: outcome.warnings,
            })
        }
    }
}
