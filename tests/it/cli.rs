//! CLI conventions: shell completions (clap_complete) loaded in a real
//! bash, the other shells' scripts, and the man page (clap_mangen) rendered
//! by the real `man`/`groff`.

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;

use crate::support::zm_cmd;

/// Every command path, `["check"]`, `["db", "sync"]`, …, from the same
/// clap definitions the binary parses with.
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, &path, out);
        }
    }
    let mut out = Vec::new();
    walk(&zoi_mirror::cli::Cli::command(), &[], &mut out);
    assert!(out.len() > 10, "{out:?}");
    out
}

fn installed(tool: &str) -> bool {
    crate::support::which(tool).is_some()
}

/// What bash offers for `words` (the last one being completed), with the
/// script loaded the way bash-completion loads it.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c"])
        .arg(
            r#"source "$1" || exit 90
spec=$(complete -p zoi-mirror) || exit 91
fn=$(sed -n 's/.*-F \([^ ]*\).*/\1/p' <<<"$spec")
[ -n "$fn" ] || exit 92
shift
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
"$fn" zoi-mirror "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(script)
        .args(words)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "bash completion of {line:?} exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn bash_completion_loads_in_bash_and_completes_commands_flags_and_values() {
    let home = tempfile::tempdir().unwrap();
    let r = zm_cmd(home.path())
        .args(["completions", "bash"])
        .expect_stderr_lacks("error")
        .run();
    let script = home.path().join("zoi-mirror.bash");
    std::fs::write(&script, &r.stdout).unwrap();

    assert_eq!(bash_complete(&script, &["zoi-mirror", "ch"]), ["check"]);
    let all = bash_complete(&script, &["zoi-mirror", ""]);
    for path in command_paths().iter().filter(|p| p.len() == 1) {
        assert!(all.contains(&path[0]), "{} not offered: {all:?}", path[0]);
    }
    assert_eq!(
        bash_complete(&script, &["zoi-mirror", "db", "s"]),
        ["sync"],
        "nested commands"
    );
    assert!(
        bash_complete(&script, &["zoi-mirror", "serve", "--bi"]).contains(&"--bind".to_string()),
        "flags of a command"
    );
    let shells = bash_complete(&script, &["zoi-mirror", "completions", ""]);
    for shell in ["bash", "zsh", "fish", "powershell"] {
        assert!(shells.contains(&shell.to_string()), "{shell}: {shells:?}");
    }
}

#[test]
fn zsh_fish_powershell_and_elvish_scripts_name_every_command() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let r = zm_cmd(home.path()).args(["completions", shell]).run();
        for path in command_paths() {
            let name = path.last().unwrap();
            assert!(
                r.stdout.contains(name.as_str()),
                "{shell} script lacks `{}`",
                path.join(" ")
            );
        }
        // Only the shells this machine has can say the script parses.
        let check = match shell {
            "zsh" => Some(("zsh", "-n")),
            "fish" => Some(("fish", "-n")),
            _ => None,
        };
        if let Some((tool, flag)) = check
            && installed(tool)
        {
            let file = home.path().join(format!("script.{shell}"));
            std::fs::write(&file, &r.stdout).unwrap();
            let out = Command::new(tool).arg(flag).arg(&file).output().unwrap();
            assert!(
                out.status.success(),
                "{tool} {flag}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let fish = zm_cmd(home.path()).args(["completions", "fish"]).run();
    assert!(
        fish.stdout.contains("complete -c zoi-mirror"),
        "fish completes the zoi-mirror command"
    );
}

/// clap builds a command's arguments only when that command runs
/// (`cli::Lazy`), and each command's `--help` still leads with the summary
/// the command list gives it, not the doc comment of its arguments' struct.
#[test]
fn only_the_command_that_runs_is_built_and_each_help_leads_with_its_summary() {
    let top = zoi_mirror::cli::Cli::command();
    let apply = top.find_subcommand("apply").unwrap();
    assert_eq!(
        apply.get_arguments().count(),
        0,
        "apply's arguments are built before it runs"
    );
    let home = tempfile::tempdir().unwrap();
    for path in command_paths() {
        let mut cmd = &top;
        for name in &path {
            cmd = cmd.find_subcommand(name).unwrap();
        }
        // --help shows the long summary where there is one.
        let about = cmd
            .get_long_about()
            .or(cmd.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut args = path.clone();
        args.push("--help".into());
        let out = zm_cmd(home.path()).args(&args).run();
        // --help wraps the summary: its first line is the summary's start.
        let first: Vec<&str> = out
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let summary: Vec<&str> = about.split_whitespace().collect();
        assert!(
            !first.is_empty() && summary.starts_with(&first),
            "{path:?} --help starts {first:?}, not with its summary {about:?}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    zm_cmd(home.path())
        .args(["completions", "tcsh"])
        .expect_status(2)
        .expect_stderr_contains("tcsh")
        .expect_stdout("")
        .run();
}

/// Counts and timeouts of 0 are refused up front (they were taken as 1, or
/// failed every request), before any spec, index or network is read.
#[test]
fn a_zero_count_or_timeout_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    for (command, flag) in [
        ("bin sync", "--concurrency"),
        ("bin sync", "--timeout"),
        ("check", "--concurrency"),
        ("check", "--per-host"),
    ] {
        zm_cmd(home.path())
            .args(command.split(' '))
            .args([flag, "0"])
            .expect_status(2)
            .expect_stderr_contains(format!("for '{flag} <"))
            .expect_stderr_contains("must be at least 1")
            .expect_stdout("")
            .run();
    }
}

/// Renders roff with the real man (or groff): (text, warnings).
fn render_roff(roff_file: &Path) -> (String, String) {
    let out = if installed("man") {
        Command::new("man")
            .arg("-l")
            .arg(roff_file)
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "100")
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap()
    } else {
        Command::new("groff")
            .args(["-man", "-Tutf8", "-P", "-cbou", "-ww"])
            .arg(roff_file)
            .output()
            .unwrap()
    };
    assert!(
        out.status.success(),
        "rendering {}: {}",
        roff_file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_man_page_renders_and_has_a_section_per_command() {
    if !installed("man") && !installed("groff") {
        // Without a renderer, the roff itself must still hold the page.
        let home = tempfile::tempdir().unwrap();
        let r = zm_cmd(home.path()).arg("man").run();
        assert!(r.stdout.contains(".TH ZOI-MIRROR"), "{}", r.stdout);
        for path in command_paths() {
            let heading = format!(".SH \"ZOI-MIRROR {}\"", path.join(" ").to_uppercase());
            assert!(r.stdout.contains(&heading), "no {heading}");
        }
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let r = zm_cmd(home.path()).arg("man").run();
    assert!(r.stdout.starts_with(".ie") || r.stdout.contains("\n.TH ZOI-MIRROR 1"));
    let page = home.path().join("zoi-mirror.1");
    std::fs::write(&page, &r.stdout).unwrap();
    let (text, warnings) = render_roff(&page);
    assert!(warnings.trim().is_empty(), "roff warnings:\n{warnings}");
    for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SUBCOMMANDS"] {
        assert!(
            text.lines().any(|l| l == heading),
            "no {heading} section:\n{text}"
        );
    }
    for path in command_paths() {
        let heading = format!("ZOI-MIRROR {}", path.join(" ").to_uppercase());
        assert!(
            text.lines().any(|l| l == heading),
            "no section {heading} in the rendered page"
        );
    }
    // The --help text is what the page says: a long about and the exit
    // codes made it through.
    assert!(text.contains("byte for byte as"), "index's long help");
    assert!(text.contains("Exit codes:"), "the exit codes");
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("man/man1");
    zm_cmd(home.path())
        .args(["man", "--dir"])
        .arg(&dir)
        .expect_stdout("")
        .run();
    let mut want: Vec<String> = command_paths()
        .iter()
        .map(|p| format!("zoi-mirror-{}.1", p.join("-")))
        .collect();
    want.push("zoi-mirror.1".into());
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    if installed("man") || installed("groff") {
        let (text, warnings) = render_roff(&dir.join("zoi-mirror-db-sync.1"));
        assert!(warnings.trim().is_empty(), "{warnings}");
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("zoi-mirror db sync [-c|--config]"), "{text}");
    }
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    for args in ["man", "completions bash", "completions zsh"] {
        // `true` exits without reading: the write meets a closed pipe.
        let out = Command::new("bash")
            .args(["-c", r#"set -o pipefail; "$1" $2 | true"#, "bash"])
            .arg(crate::support::bin())
            .arg(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args} | true: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
