//! Source kinds: how an instance reads its regional system. One module per kind, named after
//! what it reads.

pub mod file_drop;
pub mod http_poll;
pub mod sql_poll;
