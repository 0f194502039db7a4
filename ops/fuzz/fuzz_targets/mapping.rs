//! One source record through the mapping: fields as `name\u{1}value` pairs separated by NUL,
//! against a mapping that uses every kind of rule; and its identity.
#![no_main]

mod common;

use connectors::mapping::{SourceFields, identity, map};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = ["id", "期间", "代码", "名称", "用水", "面积", "面积单位", "更新时间", "电", "油", "油费"];
    let mut fields = SourceFields::new();
    for (i, pair) in text.split('\0').enumerate() {
        let (name, value) = pair
            .split_once('\u{1}')
            .unwrap_or((names[i % names.len()], pair));
        fields.insert(name.to_owned(), value.to_owned());
    }
    let mapping = common::mapping();
    let _ = map(&mapping, &fields);
    let _ = identity(&mapping, &fields);
});
