//! The WebUntis simulator and the scenario generator.
