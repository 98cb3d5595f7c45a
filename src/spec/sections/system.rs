//! `[system]`: the system layer's policy (locks, allow/deny lists,
//! signature enforcement).
//!
//! Rules: every `lock` entry is a setting Zoi can lock ([`LOCKS`], with a
//! suggestion when one is close); the allow/deny lists are lists of
//! strings, kept as given; `signature_enforcement = { enable,
//! trusted_keys }` (`enable` defaults to false).

use std::ops::Range;

use crate::spec::System;
use crate::spec::reader::{Ctx, Sec, suggest, values};
use crate::zoi::config::{LOCKS, SignatureEnforcement};

const KEYS: [&str; 8] = [
    "lock",
    "allowed_packages",
    "denied_packages",
    "allowed_repos",
    "denied_repos",
    "allowed_licenses",
    "denied_licenses",
    "signature_enforcement",
];
const SIGENF_KEYS: [&str; 2] = ["enable", "trusted_keys"];

pub(in crate::spec) fn read(ctx: &mut Ctx<'_>, root: &Sec<'_>) -> System {
    let mut system = System::default();
    let Some(sys) = root.sub(ctx, "system") else {
        return system;
    };
    sys.check_keys(ctx, &KEYS);
    for l in sys.str_list(ctx, "lock").unwrap_or_default() {
        if LOCKS.contains(&l.value.as_str()) {
            system.lock.push(l.value);
        } else {
            let hint = match suggest(&l.value, &LOCKS) {
                Some(s) => format!(
                    "did you mean '{s}'? settings that can be locked: {}",
                    LOCKS.join(", ")
                ),
                None => format!("settings that can be locked: {}", LOCKS.join(", ")),
            };
            ctx.err(
                l.span.clone(),
                format!("`system.lock`: '{}' is not a setting Zoi can lock", l.value),
                Some(hint),
            );
        }
    }
    system.allowed_packages = sys.str_list(ctx, "allowed_packages").map(values);
    system.denied_packages = sys.str_list(ctx, "denied_packages").map(values);
    system.allowed_repos = sys.str_list(ctx, "allowed_repos").map(values);
    system.denied_repos = sys.str_list(ctx, "denied_repos").map(values);
    system.allowed_licenses = sys.str_list(ctx, "allowed_licenses").map(values);
    system.denied_licenses = sys.str_list(ctx, "denied_licenses").map(values);
    if let Some(se) = sys.sub(ctx, "signature_enforcement") {
        se.check_keys(ctx, &SIGENF_KEYS);
        system.signature_enforcement = Some(SignatureEnforcement {
            enable: se.bool(ctx, "enable").unwrap_or(false),
            trusted_keys: values(se.str_list(ctx, "trusted_keys").unwrap_or_default()),
        });
    }
    system
}

/// Where `system.signature_enforcement` is written, if it is.
pub(in crate::spec) fn enforcement_span(root: &Sec<'_>) -> Option<Range<usize>> {
    root.table
        .get("system")
        .and_then(|s| s.get("signature_enforcement"))
        .and_then(|s| s.span())
}
