//! Pingyi 评议's collection server, as a library that `pingyi serve` starts.
pub mod store;
