//! The one progress helper. A bar is drawn only on a terminal stderr, never
//! with `--quiet`, `--no-progress`, `ZOI_MIRROR_NO_PROGRESS` or
//! `--format json`; otherwise it is `indicatif`'s hidden bar, so callers
//! tick it unconditionally.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Format;

/// What a bar counts, which decides how it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `check`: package/platform targets probed.
    Targets,
    /// `index`: archive bytes read, out of a known total.
    Bytes,
    /// `index s3://…`: bytes read, total unknown.
    BytesUnknownTotal,
    /// `bin sync`: files fetched (the message carries MiB and speed).
    Files,
}

impl Kind {
    fn template(self) -> &'static str {
        match self {
            Kind::Targets => "{spinner} checking {pos}/{len} package/platforms {wide_bar} {eta}",
            Kind::Bytes => {
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {msg}"
            }
            Kind::BytesUnknownTotal => "{spinner} {binary_bytes} {binary_bytes_per_sec}",
            Kind::Files => "{spinner} {pos}/{len} files {wide_bar} {msg}",
        }
    }
}

/// Whether a bar may be drawn at all: a person watching a terminal stderr
/// who did not ask for silence. `format` is the command's `--format`.
pub fn enabled(format: Format) -> bool {
    format == Format::Human
        && !super::printer::quiet()
        && !super::printer::no_progress()
        && std::io::stderr().is_terminal()
}

/// A bar of `kind` over `total` units (`None`: unknown), on stderr, or a
/// hidden one when [`enabled`] says no or there is nothing to count.
pub fn bar(kind: Kind, total: Option<u64>, format: Format) -> ProgressBar {
    if !enabled(format) || total == Some(0) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(kind.template()) {
        bar.set_style(style);
    }
    // Reading one large archive can take seconds between increments: keep
    // the spinner and the rate alive meanwhile.
    if kind == Kind::Bytes {
        bar.enable_steady_tick(Duration::from_millis(200));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        for k in [
            Kind::Targets,
            Kind::Bytes,
            Kind::BytesUnknownTotal,
            Kind::Files,
        ] {
            assert!(ProgressStyle::with_template(k.template()).is_ok(), "{k:?}");
        }
    }

    #[test]
    fn json_never_draws() {
        assert!(!enabled(Format::Json));
        assert!(bar(Kind::Files, Some(3), Format::Json).is_hidden());
    }
}
