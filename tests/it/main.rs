//! One integration-test binary (it links once), a module per behaviour. Every test talks to
//! the real gateway over real sockets and TLS, in front of a real upstream.

#[path = "../common/mod.rs"]
mod common;

mod api_keys;
mod cli;
mod hostile;
mod persistence;
mod proxy;
mod tokens;
mod users;
