//! Pingyi's console for officials, a bundle of its own served at `/admin/` (the citizens'
//! app and its service worker never load it). It signs in against the admin API, lists
//! the campaigns and shows one campaign's live dashboard, issues access codes, records
//! meeting attendance, closes and exports a campaign, prints the QR poster and shows the
//! audit log. The server decides who may do what; the console only hides what a viewer
//! cannot do and says in words when the server refuses.
//!
//! Screens are chosen by the address's fragment (`#/c/ID/VERSION`, `#/poster/ID/VERSION`,
//! `#/audit`), so a reload or a printed link lands on the same screen.

pub mod api;
pub mod i18n;
pub mod platform;
mod ui;

pub use ui::Console;
