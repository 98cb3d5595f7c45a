//! The `status` report: in sync or drift, the config layers, each setting
//! with the layer that decides it, and the traps found.

use crate::client::status::StatusReport;
use crate::output::{Style, outln, paint, stdout_color};
use crate::zoi::config::Source as Decider;

pub fn print(r: &StatusReport) {
    let color = stdout_color();
    outln!(
        "{} {}: {}",
        r.extension,
        r.version,
        if r.in_sync {
            paint("in sync", Style::Green, color)
        } else {
            paint("drift", Style::Red, color)
        }
    );
    for l in &r.layers {
        outln!(
            "  {:<8} {}{}",
            l.layer,
            l.path.display(),
            if l.exists { "" } else { " (absent)" }
        );
    }
    for s in &r.settings {
        let mark = if s.ok {
            paint("✓", Style::Green, color)
        } else {
            paint("✗", Style::Red, color)
        };
        let decided = match s.decided_by {
            Decider::System => "the system layer decides",
            Decider::User => "the user layer decides",
            Decider::Project => "the project layer decides",
            Decider::Default => "Zoi's built-in default",
            Decider::Merged => "merged from every layer",
        };
        outln!("{mark} {} ({decided})", s.key);
        outln!("    expected  {}", super::compact(Some(&s.expected)));
        outln!("    effective {}", super::compact(Some(&s.effective)));
        if let Some(why) = &s.why {
            outln!("    {why}");
        }
    }
    for t in &r.traps {
        let label = if t.severity == crate::client::status::Severity::Error {
            paint("error", Style::Red, color)
        } else {
            paint("warning", Style::Yellow, color)
        };
        outln!("{label}: {}", t.message);
        outln!("  hint: {}", t.hint);
    }
}
