//! `fehlzeiten`: a self-hosted early-warning system for school absenteeism.
//!
//! The flow (see ARCHITECTURE.md): `untis` fetches, `sync` stores through `store`, `rules`
//! evaluate, `alerts` decide what is said, `mail` delivers. `pipeline` runs one school through
//! all of it; `cli` (and later the daemon) call it.

pub mod admin;
pub mod alerts;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod inspect;
pub mod logging;
pub mod mail;
pub mod model;
pub mod pipeline;
pub mod privacy;
pub mod rules;
pub mod schedule;
pub mod sim;
pub mod status;
pub mod store;
pub mod sync;
pub mod untis;
