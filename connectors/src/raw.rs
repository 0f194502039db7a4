//! Turning a mapped record (JSON form) into the domain's typed raw record, encoded in
//! Confluent wire format under the schema registered for `raw.<domain>`.

use schemas::Domain;
use schemas::codec::{CodecError, Encoder};
use schemas::records::{
    RawAssetCard, RawEnergyReport, RawInstitution, RawOfficeBuilding, RawOperatingCost, RawVehicle,
    RawVehiclePosition, RawVehicleQuota,
};
use schemas::registry::RegistryClient;
use serde_json::Value;

/// Why a mapped record does not make a raw record.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The JSON form lacks a required field or has one of the wrong shape.
    #[error("缺少必填字段或字段格式不符 (the record does not fit the raw schema): {0}")]
    Shape(#[from] serde_json::Error),
    /// The record could not be encoded.
    #[error("编码失败 (encoding failed): {0}")]
    Encode(#[from] CodecError),
}

impl RawError {
    /// A stable code for quarantine records and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            RawError::Shape(_) => "raw_shape",
            RawError::Encode(e) => e.code(),
        }
    }
}

macro_rules! raw_encoder {
    ($($domain:ident => $record:ty),* $(,)?) => {
        /// The encoder of one domain's raw record.
        pub enum RawEncoder {
            $(
                #[doc = concat!("`", stringify!($record), "`.")]
                $domain(Encoder<$record>),
            )*
        }

        impl RawEncoder {
            /// Registers the raw schema of `domain` and returns its encoder.
            pub async fn register(
                domain: Domain,
                registry: &RegistryClient,
            ) -> Result<Self, CodecError> {
                Ok(match domain {
                    $(Domain::$domain => RawEncoder::$domain(Encoder::register(registry).await?),)*
                })
            }

            /// The encoder of `domain`'s raw record under an already registered schema id.
            pub fn with_schema_id(domain: Domain, id: u32) -> Result<Self, CodecError> {
                Ok(match domain {
                    $(Domain::$domain => RawEncoder::$domain(Encoder::with_schema_id(id)?),)*
                })
            }

            /// The schema id written in each message.
            pub fn schema_id(&self) -> u32 {
                match self {
                    $(RawEncoder::$domain(encoder) => encoder.schema_id(),)*
                }
            }

            /// Encodes the JSON form of a raw record (with provenance) as a framed message.
            pub fn encode(&self, record: Value) -> Result<Vec<u8>, RawError> {
                match self {
                    $(RawEncoder::$domain(encoder) => {
                        let record: $record = serde_json::from_value(record)?;
                        Ok(encoder.encode(&record)?)
                    })*
                }
            }
        }
    };
}

raw_encoder! {
    Institution => RawInstitution,
    Vehicle => RawVehicle,
    VehiclePosition => RawVehiclePosition,
    VehicleQuota => RawVehicleQuota,
    OfficeBuilding => RawOfficeBuilding,
    EnergyReport => RawEnergyReport,
    AssetCard => RawAssetCard,
    OperatingCost => RawOperatingCost,
}
