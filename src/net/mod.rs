//! The network underneath `probe`, `mirror`, `bundle` and `storage`: the
//! one HTTP client ([`client`]), the prober that sends one request
//! robustly ([`prober`]), what a failure is ([`problem`]) and how a
//! transport error or a status becomes one ([`classify`], [`reply`]), the
//! one retry policy ([`retry`]), how URLs and messages are shown without
//! credentials ([`redact`](crate::net::redact)), and which inputs named on
//! the command line are URLs and which are paths ([`source`]).
//!
//! Nothing here knows Zoi's rules for *which* URLs to fetch or what their
//! bodies must hold; it only decides how to fetch them and how to name a
//! failure.

pub mod classify;
pub mod client;
pub mod prober;
pub mod problem;
pub mod redact;
pub mod reply;
pub mod retry;
pub mod source;
