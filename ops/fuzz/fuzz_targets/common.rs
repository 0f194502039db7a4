//! What the targets share: small limits, so the fuzzer reaches them, and a mapping that uses
//! every kind of rule. Each target uses part of it.
#![allow(dead_code)]

use connectors::config::MappingConfig;
use connectors::limits::Limits;

/// Limits small enough for the fuzzer to cross each of them.
pub fn limits() -> Limits {
    Limits {
        max_record_bytes: 4096,
        max_file_bytes: 1 << 20,
        max_rows: 64,
        max_columns: 32,
        max_cells: 2048,
        max_xlsx_part_bytes: 1 << 20,
        max_line_bytes: 1024,
        max_body_bytes: 1 << 20,
        max_items: 64,
        max_batch_id_bytes: 32,
        ..Limits::default()
    }
}

/// A mapping with renames, value maps, dates, quantities, constants, a timestamp and an
/// array built from columns.
pub fn mapping() -> MappingConfig {
    let toml = r#"
record_id = ["id", "期间"]
version_field = "更新时间"
fields = { uscc = "代码", period = "期间", institution_name = "名称", vin = "id" }
values = { period = { "三月" = "2025-03" } }
dates = { period = "%Y年%m月" }
constants = { datum = "WGS84" }
quantities = { water = { field = "用水", unit = "吨" }, building_area = { field = "面积", unit_field = "面积单位" } }
source_timestamp = { field = "更新时间", format = "%Y-%m-%d %H:%M:%S" }
[arrays.lines]
label_field = "carrier"
quantity_field = "amount"
columns = [
  { label = "电力", field = "电", unit = "万千瓦时" },
  { label = "汽油", field = "油", unit = "升", quantities = { cost = { field = "油费", unit = "元" } } },
]
"#;
    toml::from_str(toml).expect("the fuzz mapping parses")
}
