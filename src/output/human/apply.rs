//! The `apply` report: the diff of a dry run, or what changed and how to
//! revert it.

use crate::client::{ApplyReport, ZoiAction};
use crate::output::{Style, info, out, outln, paint, stdout_color, warn};

pub fn print(r: &ApplyReport) {
    let color = stdout_color();
    let path = r.target.config_path.display();
    if r.dry_run {
        if let Some(d) = &r.diff {
            out!("{d}");
        }
        info(format!("dry run: {path} not changed"));
    } else if r.already_applied {
        outln!(
            "{} {} {} is already applied to {path}",
            paint("ok", Style::Green, color),
            r.extension,
            r.version
        );
    } else {
        outln!(
            "{} {} {} to {path} ({} scope, {} layout: {})",
            paint("Applied", Style::Green, color),
            r.extension,
            r.version,
            r.scope.as_str(),
            match r.target.layout {
                crate::zoi::paths::LayoutKind::Xdg => "xdg",
                crate::zoi::paths::LayoutKind::Legacy => "legacy",
            },
            r.target.layout_reason
        );
        for k in r.keys.iter().filter(|k| k.changed) {
            outln!(
                "  {:<17} {} → {}",
                k.key,
                super::compact(k.before.as_ref()),
                super::compact(k.after.as_ref())
            );
        }
        if let Some(b) = &r.backup {
            outln!("  backup: {}", b.display());
        }
    }
    match r.zoi.action {
        ZoiAction::Added => info("zoi: extension registered (`zoi extension add`)"),
        ZoiAction::Replaced => info("zoi: the previously registered version was replaced"),
        ZoiAction::AlreadyRegistered => info("zoi: extension already registered"),
        ZoiAction::Skipped | ZoiAction::NotUsed => {
            if let Some(why) = &r.zoi.reason {
                info(format!("zoi: {why}"));
            }
        }
    }
    for n in &r.notes {
        warn(n);
    }
    if !r.dry_run && !r.already_applied {
        outln!("revert with: {}", r.revert_command);
    }
}
