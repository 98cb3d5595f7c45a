//! Where Zoi keeps its config and data, resolved exactly as Zoi resolves it.
//!
//! - user config, Zoi ≥ 1.26: `$XDG_CONFIG_HOME/zoi/config.yaml` when that
//!   variable is absolute and non-empty, else `~/.config/zoi/config.yaml` on
//!   Linux/BSD and the platform config dir on macOS and Windows;
//! - user config, Zoi ≤ 1.25: `~/.zoi/pkgs/config.yaml` (ignored by ≥ 1.26);
//! - system config: `/etc/zoi`, `/Library/Application Support/zoi`,
//!   `C:\ProgramData\zoi`;
//! - project config: `<cwd>/.zoi/pkgs/config.yaml`.
//!
//! "Home" follows `SUDO_USER`/`DOAS_USER`, as Zoi's does, so that
//! `sudo zoi-mirror apply` edits the invoking user's file. A `--root`
//! prefixes every absolute path, including the XDG ones, as Zoi's own
//! `--root` does.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which generation of Zoi's on-disk layout a machine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutKind {
    /// Zoi ≥ 1.26: XDG base directories.
    Xdg,
    /// Zoi ≤ 1.25: everything under `~/.zoi`.
    Legacy,
}

/// The first Zoi version with the XDG layout.
pub const FIRST_XDG: semver::Version = semver::Version::new(1, 26, 0);

impl LayoutKind {
    pub fn for_version(v: &semver::Version) -> Self {
        if *v >= FIRST_XDG {
            LayoutKind::Xdg
        } else {
            LayoutKind::Legacy
        }
    }
}

/// The environment the paths depend on, captured once (and injectable in
/// tests).
#[derive(Debug, Clone)]
pub struct Env {
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<OsString>,
    pub xdg_data_home: Option<OsString>,
    pub xdg_state_home: Option<OsString>,
    pub cwd: PathBuf,
    pub root: Option<PathBuf>,
}

impl Env {
    pub fn from_process(root: Option<PathBuf>) -> Self {
        Env {
            home: invoking_user_home(),
            xdg_config_home: std::env::var_os("XDG_CONFIG_HOME"),
            xdg_data_home: std::env::var_os("XDG_DATA_HOME"),
            xdg_state_home: std::env::var_os("XDG_STATE_HOME"),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            root,
        }
    }

    /// Prefixes an absolute path with `--root`, never letting `..` climb
    /// above it (Zoi's `apply_sysroot`).
    pub fn rooted(&self, path: PathBuf) -> PathBuf {
        let Some(root) = &self.root else { return path };
        let mut out = root.clone();
        for c in path.components() {
            match c {
                Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
                Component::ParentDir => {
                    if out != *root {
                        out.pop();
                    }
                }
                Component::Normal(n) => out.push(n),
            }
        }
        out
    }

    fn home(&self) -> anyhow::Result<&Path> {
        self.home
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("cannot determine the home directory (HOME is not set)"))
    }

    /// `$VAR` when absolute and non-empty, else the Linux fallback under
    /// home, else (macOS, Windows) the platform directory.
    fn xdg(
        &self,
        var: &Option<OsString>,
        unix_fallback: &str,
        platform: fn() -> Option<PathBuf>,
    ) -> anyhow::Result<PathBuf> {
        if let Some(v) = var.as_ref().filter(|v| !v.is_empty()) {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                return Ok(p);
            }
        }
        if cfg!(unix) && !cfg!(target_os = "macos") {
            return Ok(self.home()?.join(unix_fallback));
        }
        platform().ok_or_else(|| anyhow::anyhow!("cannot determine the platform directory"))
    }

    /// The user config file for `layout`.
    pub fn user_config(&self, layout: LayoutKind) -> anyhow::Result<PathBuf> {
        let p = match layout {
            LayoutKind::Xdg => self
                .xdg(&self.xdg_config_home, ".config", dirs::config_dir)?
                .join("zoi")
                .join("config.yaml"),
            LayoutKind::Legacy => self.home()?.join(".zoi/pkgs/config.yaml"),
        };
        Ok(self.rooted(p))
    }

    /// Zoi's user data dir (`pkgs/store`, `pkgs/db`, `pkgs/git`, `pgps`).
    pub fn user_data(&self, layout: LayoutKind) -> anyhow::Result<PathBuf> {
        let p = match layout {
            LayoutKind::Xdg => self
                .xdg(&self.xdg_data_home, ".local/share", dirs::data_local_dir)?
                .join("zoi"),
            LayoutKind::Legacy => self.home()?.join(".zoi"),
        };
        Ok(self.rooted(p))
    }

    pub fn system_config(&self) -> PathBuf {
        self.rooted(system_config_dir().join("config.yaml"))
    }

    pub fn project_config(&self) -> PathBuf {
        self.rooted(self.cwd.join(".zoi").join("pkgs").join("config.yaml"))
    }

    /// Where zoi-mirror keeps its own per-extension state for `scope`.
    pub fn state_dir(&self, system: bool) -> anyhow::Result<PathBuf> {
        if system {
            let base = if cfg!(windows) {
                PathBuf::from("C:\\ProgramData\\zoi-mirror")
            } else if cfg!(target_os = "macos") {
                PathBuf::from("/Library/Application Support/zoi-mirror")
            } else {
                PathBuf::from("/var/lib/zoi-mirror")
            };
            return Ok(self.rooted(base));
        }
        let base = self.xdg(&self.xdg_state_home, ".local/state", dirs::data_local_dir)?;
        Ok(self.rooted(base.join("zoi-mirror")))
    }
}

fn system_config_dir() -> PathBuf {
    if cfg!(windows) {
        PathBuf::from("C:\\ProgramData\\zoi")
    } else if cfg!(target_os = "macos") {
        PathBuf::from("/Library/Application Support/zoi")
    } else {
        PathBuf::from("/etc/zoi")
    }
}

/// The home of the user who invoked us, also under `sudo`/`doas`.
pub fn invoking_user_home() -> Option<PathBuf> {
    #[cfg(unix)]
    if let Some(user) = invoking_user() {
        return Some(user.dir);
    }
    dirs::home_dir()
}

/// The user behind `sudo`/`doas`, when there is one.
#[cfg(unix)]
pub fn invoking_user() -> Option<nix::unistd::User> {
    let name = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("DOAS_USER"))
        .ok()?;
    nix::unistd::User::from_name(&name).ok().flatten()
}

/// Parses `zoi --version` output (`Number: 1.29.4`, or any `x.y.z` token).
pub fn parse_zoi_version(output: &str) -> Option<semver::Version> {
    let from_line = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Number:"))
        .and_then(|v| semver::Version::parse(v.trim()).ok());
    from_line.or_else(|| {
        output
            .split(|c: char| c.is_whitespace() || c == 'v')
            .find_map(|tok| semver::Version::parse(tok.trim()).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &str) -> Env {
        Env {
            home: Some(home.into()),
            xdg_config_home: None,
            xdg_data_home: None,
            xdg_state_home: None,
            cwd: "/work/proj".into(),
            root: None,
        }
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn xdg_and_legacy_user_paths() {
        let mut e = env("/home/u");
        assert_eq!(
            e.user_config(LayoutKind::Xdg).unwrap(),
            Path::new("/home/u/.config/zoi/config.yaml")
        );
        assert_eq!(
            e.user_config(LayoutKind::Legacy).unwrap(),
            Path::new("/home/u/.zoi/pkgs/config.yaml")
        );
        e.xdg_config_home = Some("/x/cfg".into());
        assert_eq!(
            e.user_config(LayoutKind::Xdg).unwrap(),
            Path::new("/x/cfg/zoi/config.yaml")
        );
        // relative or empty XDG values are ignored, as Zoi does
        e.xdg_config_home = Some("rel".into());
        assert_eq!(
            e.user_config(LayoutKind::Xdg).unwrap(),
            Path::new("/home/u/.config/zoi/config.yaml")
        );
        e.xdg_config_home = Some("".into());
        assert_eq!(
            e.user_config(LayoutKind::Xdg).unwrap(),
            Path::new("/home/u/.config/zoi/config.yaml")
        );
        assert_eq!(
            e.project_config(),
            Path::new("/work/proj/.zoi/pkgs/config.yaml")
        );
    }

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn root_prefixes_everything_and_contains_dotdot() {
        let mut e = env("/home/u");
        e.root = Some("/img".into());
        assert_eq!(e.system_config(), Path::new("/img/etc/zoi/config.yaml"));
        assert_eq!(
            e.user_config(LayoutKind::Xdg).unwrap(),
            Path::new("/img/home/u/.config/zoi/config.yaml")
        );
        assert_eq!(e.rooted("/../../etc/x".into()), Path::new("/img/etc/x"));
    }

    #[test]
    fn parses_zoi_version_output() {
        let out = ":: Zoi version information\nBranch: Prod\nStatus: Release\nNumber: 1.29.4\nCommit: dev\n";
        assert_eq!(parse_zoi_version(out), Some(semver::Version::new(1, 29, 4)));
        assert_eq!(
            parse_zoi_version("zoi v1.25.5"),
            Some(semver::Version::new(1, 25, 5))
        );
        assert_eq!(parse_zoi_version("nothing"), None);
        assert_eq!(
            LayoutKind::for_version(&semver::Version::new(1, 25, 5)),
            LayoutKind::Legacy
        );
        assert_eq!(
            LayoutKind::for_version(&semver::Version::new(1, 26, 0)),
            LayoutKind::Xdg
        );
    }
}
