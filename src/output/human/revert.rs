//! The `revert` report: the diff of a dry run, or each key restored or
//! kept.

use crate::client::{RevertAction, RevertReport};
use crate::output::{Style, info, out, outln, paint, stdout_color, warn};

pub fn print(r: &RevertReport) {
    let color = stdout_color();
    if r.diff.is_some() {
        out!("{}", r.diff.as_deref().unwrap_or_default());
        info("dry run: nothing changed");
    } else if !r.reverted {
        outln!("nothing to revert for {}", r.extension);
    } else {
        outln!(
            "{} {} in {}",
            paint("Reverted", Style::Green, color),
            r.extension,
            r.config_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        for k in &r.keys {
            match k.action {
                RevertAction::Restored => outln!(
                    "  {:<17} restored to {}",
                    k.key,
                    super::compact(k.after.as_ref())
                ),
                RevertAction::Kept => outln!(
                    "  {:<17} kept {} (you changed it after apply)",
                    k.key,
                    super::compact(k.now.as_ref())
                ),
                RevertAction::Unchanged => {}
            }
        }
        if let Some(b) = &r.backup {
            outln!("  backup: {}", b.display());
        }
        if r.zoi == crate::client::ZoiRemoval::Removed {
            info("zoi: extension removed (`zoi extension remove`)");
        }
    }
    for n in &r.notes {
        warn(n);
    }
}
