//! Connectors (连接器): read regional systems (HTTP APIs, file drops, databases, pushes) and write
//! what they report, in raw form, to the `raw.<domain>` topics.

pub mod preflight;
