//! `zoi-mirror status BUNDLE`: drift report.

use anyhow::Result;

use super::{compact, machine, net_options};
use crate::bundle::load::{self, Source};
use crate::cli::StatusArgs;
use crate::client::status;
use crate::error::Exit;
use crate::output::{self, Format, Style, paint};
use crate::zoi::config::Source as Decider;

pub fn run(args: &StatusArgs, format: Format) -> Result<Exit> {
    let mut http = net_options(&args.net)?;
    http.allow_headers_for(&args.bundle);
    let bundle = load::open(Source::parse(&args.bundle), args.sha512.as_deref(), &http)?;
    let (env, zoi) = machine(&args.machine)?;
    let r = status::status(
        &bundle,
        args.machine.scope,
        &env,
        args.machine.layout,
        zoi.as_ref().and_then(|z| z.version.as_ref()),
    )?;
    let exit = if r.in_sync { Exit::Ok } else { Exit::No };
    if format == Format::Json {
        output::json(&r)?;
        return Ok(exit);
    }
    let color = output::stdout_color();
    println!(
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
        println!(
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
        println!("{mark} {} ({decided})", s.key);
        println!("    expected  {}", compact(Some(&s.expected)));
        println!("    effective {}", compact(Some(&s.effective)));
        if let Some(why) = &s.why {
            println!("    {why}");
        }
    }
    for t in &r.traps {
        let label = if t.severity == status::Severity::Error {
            paint("error", Style::Red, color)
        } else {
            paint("warning", Style::Yellow, color)
        };
        println!("{label}: {}", t.message);
        println!("  hint: {}", t.hint);
    }
    Ok(exit)
}
