//! Pingyi 评议's collection server, as a library that `pingyi serve` starts.
//!
//! It serves the form app (the site folder, read once at start) and the JSON API under
//! /api/v1/ that devices send ballots to; every ballot is checked against its form with
//! the `analysis` code the CLI uses, and stored durably (SQLite or PostgreSQL, see
//! [`store`]) before it is acknowledged.
//!
//! - [`config`]: what to serve and the limits; [`server`]: binding and the accept loop;
//! - [`codes`]: making access codes and their keyed hashes, the printable code sheet;
//! - [`http`]: the router, its layers and the handlers; [`intake`]: checking and storing
//!   ballots; [`forms`]: the collected forms; [`site`]: the site files; [`tls`]: HTTPS.

pub mod auth;
pub mod codes;
pub mod config;
pub mod dashboard;
pub mod export;
pub mod forms;
pub mod http;
pub mod intake;
pub mod server;
pub mod site;
pub mod store;
pub mod tls;

pub use config::{Config, FormFile, Limits, TlsFiles};
pub use server::{Server, StartError};
