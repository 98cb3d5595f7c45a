//! The `check` report (also printed by `apply --verify`). URLs, names and
//! messages come from repo.yaml, an index and the servers: each is shown
//! through [`shown`].

use super::shown;
use crate::output::{Style, info, outln, paint, stdout_color, warn};
use crate::probe::report::{CheckKind, Report};

pub fn print(r: &Report) {
    let color = stdout_color();
    let ok = paint("ok  ", Style::Green, color);
    let bad = paint("FAIL", Style::Red, color);
    for n in &r.notes {
        info(format!("note: {n}"));
    }
    for reg in &r.registry {
        for c in &reg.checks {
            if c.ok {
                outln!(
                    "{ok} registry {} ({}{})",
                    shown(&c.url),
                    reg.role,
                    match c.kind {
                        CheckKind::RepoYaml => ", repo.yaml",
                        CheckKind::Signature => ", HEAD signed by an authority",
                        _ => "",
                    }
                );
            } else if let Some(e) = &c.error {
                outln!(
                    "{bad} registry {} ({}): {}: {}",
                    shown(&c.url),
                    reg.role,
                    e.kind.as_str(),
                    shown(&e.message)
                );
            }
            for w in &c.warnings {
                warn(format!("registry {} ({}): {w}", c.url, reg.role));
            }
        }
    }
    for k in &r.keys {
        match &k.error {
            None => outln!("{ok} key {}", shown(&k.url)),
            Some(e) => outln!(
                "{bad} key {}: {}: {}",
                shown(&k.url),
                e.kind.as_str(),
                shown(&e.message)
            ),
        }
        for w in &k.warnings {
            warn(format!("key {}: {w}", k.url));
        }
    }
    for t in r.packages.iter() {
        let label = format!("{}@{} {}", shown(&t.package), shown(t.version), t.platform);
        if t.ok {
            outln!("{ok} {label}");
        } else {
            outln!("{bad} {label}");
            for c in &t.urls {
                if let Some(e) = &c.error {
                    outln!(
                        "       {}: {} ({}) {}",
                        c.kind,
                        e.kind.as_str(),
                        shown(&e.message),
                        shown(&c.url)
                    );
                }
            }
        }
        for c in &t.urls {
            for w in &c.warnings {
                warn(format!("{label} {}: {w}", c.kind));
            }
        }
    }
    for h in &r.hosts {
        match &h.error {
            None => outln!(
                "{ok} binary host {} (HTTP {})",
                shown(&h.url),
                h.status.unwrap_or_default()
            ),
            Some(e) => outln!(
                "{bad} binary host {}: {}: {}",
                shown(&h.url),
                e.kind.as_str(),
                shown(&e.message)
            ),
        }
    }
    let failed_fallbacks: Vec<_> = r.fallbacks.iter().filter(|f| !f.ok).collect();
    if !r.fallbacks.is_empty() {
        outln!(
            "cache mirrors: {} of {} fallback archive URLs answer",
            r.fallbacks.len() - failed_fallbacks.len(),
            r.fallbacks.len()
        );
        for f in failed_fallbacks.iter().take(20) {
            if let Some(e) = &f.error {
                outln!(
                    "     fallback {}: {}: {}",
                    shown(&f.url),
                    e.kind.as_str(),
                    shown(&e.message)
                );
            }
        }
    }
    let c = &r.counts;
    outln!(
        "checked {} URLs ({} package/platforms) in {:.1} s: {} ok, {} failed, {} warnings",
        c.urls,
        c.targets,
        r.elapsed_ms / 1000.0,
        c.ok,
        c.failed,
        c.warnings
    );
    if !c.by_kind.is_empty() {
        outln!("  {:<26} {:>6}  what to do", "failure", "count");
        for (kind, n) in &c.by_kind {
            outln!("  {:<26} {n:>6}  {}", kind.as_str(), kind.hint());
        }
    }
}
