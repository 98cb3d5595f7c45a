//! Integration tests: one binary, shared helpers in `support`.

mod support;

mod apply;
mod binsync;
mod build;
mod check;
mod cli;
mod db;
mod demo;
mod differential;
mod e2e;
mod fleet;
mod hardening;
mod house;
mod index;
mod layers;
mod output;
mod s3;
mod serve;
mod setup;
mod sync;
mod trust;
mod upstream;
