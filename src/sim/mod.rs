//! The WebUntis simulator and the deterministic scenario generator.
//!
//! [`scenario`] generates a school (roster, timetable, calendar, a school year of absences with
//! planted patterns and their ground truth); [`server`] serves it over HTTP with the contract of
//! SPEC §3 (token, OneRoster 1.1, class-register absences). Used by `demo`, `simulate-untis` and
//! tests; production paths never depend on this module.

pub mod scenario;
pub mod server;

pub use scenario::{Category, PlantedCase, Scenario};
pub use server::{
    DataChange, FaultAction, Faults, RequestLogEntry, RetryAfter, RouteMatch, SimConfig, SimHandle,
    Trigger, When, run_standalone, start,
};
