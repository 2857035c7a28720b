//! The engine: everything between the two API clients — configuration, the pure mapping rules,
//! and the extract / load / retry / verify pipelines with their reports. Only this crate touches
//! the store; it never prints (the binary does), it reports through return values and `tracing`.

pub mod config;
pub mod mapping;
