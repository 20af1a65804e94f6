//! One integration-test binary (it links once), a module per behaviour. Every test talks to
//! the real gateway over real sockets and TLS, in front of a real upstream.

#[path = "../common/mod.rs"]
mod common;

mod accounts_input;
mod api_docs;
mod api_key_durability;
mod api_keys;
mod browser_ui;
mod cli;
mod faults;
mod hostile;
mod operations;
mod persistence;
mod postgres_tls;
mod proxy;
mod reload;
mod replicas;
mod store_suite;
mod token_validation;
mod tokens;
mod users;
mod web_session;
mod websocket;
