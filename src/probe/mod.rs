//! Talking to the network: the shared HTTP client and (for `check`) the
//! probes of registry git URLs and binary-host URLs.
//!
//! Nothing here knows Zoi's rules for *which* URLs to fetch; it asks
//! [`crate::zoi`] and only decides how to fetch them robustly.

pub mod http;
