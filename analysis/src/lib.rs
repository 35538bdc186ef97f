//! Pingyi's domain library: everything about forms, ballots and their numbers.
//!
//! It compiles both natively (for the `pingyi` CLI) and to wasm32 (for the form app),
//! so the app writes exports with exactly the code that the CLI reads them with.
//! Native-only parts sit behind the default `native` feature. Nothing here prints,
//! exits or reads the clock: callers pass inputs in and get values or errors back.

pub mod access_code;
pub mod aggregate;
pub mod assess;
pub mod ballot;
pub mod careless;
pub mod compact;
pub mod csv_lines;
pub mod error;
pub mod expr;
#[cfg(feature = "native")]
pub mod files;
pub mod form;
pub mod ingest;
pub mod json;
pub mod label;
pub mod merge;
pub mod render;
pub mod rules;
pub mod score;
pub mod stats;
pub mod synth;
pub mod tally;
pub mod time;
pub mod wide_csv;

pub use ballot::{Answer, Ballot};
pub use error::{InputError, Problem};
pub use form::Form;
pub use label::Label;
