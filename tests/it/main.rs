//! Integration tests: one binary, shared helpers in `support`.

mod support;

mod build;
mod index;
