//! Pingyi's domain library: everything about forms, ballots and their numbers.
//!
//! It compiles both natively (for the `pingyi` CLI) and to wasm32 (for the form app),
//! so the app writes exports with exactly the code that the CLI reads them with.
//! Native-only parts sit behind the default `native` feature. Nothing here prints,
//! exits or reads the clock: callers pass inputs in and get values or errors back.

pub mod ballot;
pub mod csv_lines;
pub mod error;
pub mod expr;
pub mod form;
pub mod json;
pub mod label;
pub mod time;
pub mod wide_csv;

pub use ballot::{Answer, Ballot};
pub use error::{InputError, Problem};
pub use form::Form;
pub use label::Label;
