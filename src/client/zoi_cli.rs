//! Running the real `zoi` executable, and reading the traces it leaves.
//!
//! `apply` registers the extension through Zoi (`zoi extension add`) so that
//! `zoi extension remove` knows it; we never imitate Zoi's store ourselves.
//! We do read the store to learn whether an extension is already
//! registered, because Zoi has no `zoi extension list`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::zoi::paths::parse_zoi_version;

#[derive(Debug, Clone)]
pub struct Zoi {
    pub path: PathBuf,
    pub version: Option<semver::Version>,
    /// Zoi's global `--root`, passed through when set.
    pub root: Option<PathBuf>,
    /// Run zoi as the user behind `sudo`/`doas` (user scope): as root it
    /// would leave root-owned files in their Zoi store.
    pub as_invoking_user: bool,
}

/// Finds `zoi`: an explicit path, else the first executable `zoi` on PATH.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    let names: &[&str] = if cfg!(windows) {
        &["zoi.exe", "zoi"]
    } else {
        &["zoi"]
    };
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    p.is_file()
}

impl Zoi {
    /// Probes `path` with `zoi --version`.
    pub fn open(path: PathBuf, root: Option<PathBuf>) -> Result<Zoi> {
        let out = Command::new(&path)
            .arg("--version")
            .output()
            .with_context(|| format!("cannot run {} --version", path.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(Zoi {
            version: parse_zoi_version(&text),
            path,
            root,
            as_invoking_user: false,
        })
    }

    /// The user behind `sudo`/`doas` that zoi runs as, when it does:
    /// then a file handed to it must be theirs to read.
    #[cfg(unix)]
    fn invoking_user(&self) -> Option<nix::unistd::User> {
        if self.as_invoking_user && nix::unistd::geteuid().is_root() {
            crate::zoi::paths::invoking_user()
        } else {
            None
        }
    }

    /// Whether zoi runs as another user than this process (see
    /// [`Zoi::as_invoking_user`]).
    pub fn runs_as_another_user(&self) -> bool {
        #[cfg(unix)]
        return self.invoking_user().is_some();
        #[cfg(not(unix))]
        false
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(root) = &self.root {
            c.arg("--root").arg(root);
        }
        #[cfg(unix)]
        if let Some(user) = self.invoking_user() {
            use std::os::unix::process::CommandExt;
            c.uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .env("HOME", &user.dir)
                .env("USER", &user.name)
                .env("LOGNAME", &user.name)
                .env_remove("SUDO_USER")
                .env_remove("DOAS_USER");
        }
        c
    }

    fn run(&self, args: &[&std::ffi::OsStr]) -> Result<String> {
        let mut c = self.command();
        c.args(args).stdin(std::process::Stdio::null());
        let out = c
            .output()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            let shown: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            anyhow::bail!(
                "`zoi {}` failed ({}):\n{}",
                shown.join(" "),
                out.status,
                text.trim_end()
            );
        }
        Ok(text)
    }

    /// `zoi extension add -y FILE` (`-y` because a local file asks for
    /// confirmation, and we run without a TTY).
    pub fn extension_add(&self, file: &Path) -> Result<String> {
        self.run(&[
            "extension".as_ref(),
            "add".as_ref(),
            "-y".as_ref(),
            file.as_os_str(),
        ])
    }

    pub fn extension_remove(&self, name: &str) -> Result<String> {
        self.run(&[
            "extension".as_ref(),
            "remove".as_ref(),
            "-y".as_ref(),
            name.as_ref(),
        ])
    }
}

/// An extension record in Zoi's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub version: String,
    pub dir: PathBuf,
}

/// Finds the record Zoi keeps for extension `name` under
/// `<data>/pkgs/store/<id>-<name>/<version>/manifest.json`.
///
/// An entry that cannot be read (a file where Zoi keeps a folder, a folder
/// without permission) is skipped, as Zoi skips it: it must not hide the
/// record next to it (revert would then skip `zoi extension remove`). The
/// entries are visited in name order, so the answer does not depend on the
/// order the file system lists them in; within one, the version `latest`
/// links to, as Zoi reads it.
pub fn registered(zoi_data_dir: &Path, name: &str) -> Option<Registered> {
    let store = zoi_data_dir.join("pkgs").join("store");
    let suffix = format!("-{name}");
    let mut pkgs: Vec<PathBuf> = std::fs::read_dir(&store)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
        .map(|e| e.path())
        .collect();
    pkgs.sort();
    for pkg in pkgs {
        // Zoi reads what is installed through `<pkg>/latest`, the link it
        // points at the version it added last (zoi-resolver's local.rs);
        // other version folders are not what it holds. Without the link,
        // every version folder, in name order.
        let latest = pkg.join("latest");
        let versions: Vec<PathBuf> = if latest.is_dir() {
            vec![std::fs::canonicalize(&latest).unwrap_or(latest)]
        } else {
            let Ok(rd) = std::fs::read_dir(&pkg) else {
                continue;
            };
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            v
        };
        for ver in versions {
            let manifest = ver.join("manifest.json");
            let Ok(bytes) = std::fs::read(&manifest) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let is_ours =
                v["name"].as_str() == Some(name) && v["package_type"].as_str() == Some("extension");
            if is_ours {
                return Some(Registered {
                    version: v["version"].as_str().unwrap_or_default().to_string(),
                    dir: ver,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(store: &Path, dir: &str, version: &str) {
        let d = store.join(dir).join(version);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("manifest.json"),
            format!(r#"{{"name":"acme","version":"{version}","package_type":"extension"}}"#),
        )
        .unwrap();
    }

    /// A store entry `read_dir` fails on, even for root: a file where Zoi
    /// keeps a folder. Many of them, made before and after the record, so
    /// that whatever order the file system lists them in, one comes first.
    #[test]
    fn an_unreadable_store_entry_does_not_hide_the_record_next_to_it() {
        let data = tempfile::tempdir().unwrap();
        let store = data.path().join("pkgs/store");
        std::fs::create_dir_all(&store).unwrap();
        for i in 0..20 {
            std::fs::write(store.join(format!("a{i:02}-acme")), "not a folder").unwrap();
        }
        record(&store, "b-acme", "1.0.0");
        for i in 20..40 {
            std::fs::write(store.join(format!("a{i:02}-acme")), "not a folder").unwrap();
        }
        let r = registered(data.path(), "acme").expect("the record is found");
        assert_eq!(r.version, "1.0.0");
        assert_eq!(r.dir, store.join("b-acme/1.0.0"));
        // and another extension's record is not ours
        assert_eq!(registered(data.path(), "beta"), None);
    }

    /// With several versions kept, the one Zoi holds is the one `latest`
    /// links to, whatever the folders' names or listing order.
    #[cfg(unix)]
    #[test]
    fn the_version_latest_links_to_is_the_record() {
        let data = tempfile::tempdir().unwrap();
        let store = data.path().join("pkgs/store");
        for v in ["0.9.0", "1.0.0", "2.0.0"] {
            record(&store, "x1-acme", v);
        }
        std::os::unix::fs::symlink(store.join("x1-acme/1.0.0"), store.join("x1-acme/latest"))
            .unwrap();
        let r = registered(data.path(), "acme").expect("the record is found");
        assert_eq!(r.version, "1.0.0");
        assert_eq!(r.dir, store.join("x1-acme/1.0.0"));
    }
}
