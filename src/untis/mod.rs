//! The WebUntis client (SPEC §3).
