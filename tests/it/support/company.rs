//! The company's side of the trust, sync and differential tests: its git
//! server, its binary host (nginx over `site/`), its registry signing key,
//! and the commands it runs over them.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

use super::Run;
use super::gitd::{GitDaemon, empty_bare, git};
use super::gpg;
use super::nginx::Nginx;
use super::upstream::{Package, Upstream, host_platform};
use super::zoienv::{Sandbox, share};

/// The company's side: its git server, its binary host (nginx over
/// `site/`), its registry signing key.
pub struct Company {
    pub sb: Sandbox,
    pub site: PathBuf,
    pub nginx: Nginx,
    pub gitd: Option<GitDaemon>,
    pub git_root: PathBuf,
    pub gnupg: PathBuf,
    pub fpr: String,
    pub work: PathBuf,
}

impl Company {
    pub fn new() -> Company {
        Company::with_nginx("")
    }

    /// With `extra` inside nginx's `server` block (`{site}` = the site root).
    pub fn with_nginx(extra: &str) -> Company {
        let sb = Sandbox::new();
        let root = sb.path().to_path_buf();
        let site = root.join("site");
        fs::create_dir_all(site.join("pkgs")).unwrap();
        fs::create_dir_all(site.join("keys")).unwrap();
        let gnupg = gpg::new_home(&root.join("company-gnupg"));
        let fpr = gpg::add_key(&gnupg, "ACME Registry <registry@acme.example>");
        fs::write(
            site.join("keys/acme-registry.asc"),
            gpg::export(&gnupg, &fpr),
        )
        .unwrap();
        let git_root = root.join("git");
        fs::create_dir_all(&git_root).unwrap();
        empty_bare(&git_root.join("mirror.git"));
        let gitd = Some(GitDaemon::start(&git_root));
        let nginx = Nginx::start_with(&site, &extra.replace("{site}", &site.display().to_string()));
        share(&site);
        Company {
            work: root.join("db-work"),
            sb,
            site,
            nginx,
            gitd,
            git_root,
            gnupg,
            fpr,
        }
    }

    pub fn base(&self) -> String {
        self.nginx.url("").trim_end_matches('/').to_string()
    }

    /// The shipped example's secure shape over this world: authorities =
    /// the company key, a signed overlay, upstream's archives. `binaries`
    /// gets `extra` appended.
    pub fn spec(&self, up: &Upstream, binaries_extra: &str) -> PathBuf {
        super::spec::company(
            &self.gitd.as_ref().expect("git daemon").url("mirror.git"),
            &up.git_url(),
            &self.fpr,
            &self.base(),
        )
        .merge_under("binaries", binaries_extra)
        .write(self.sb.path())
    }

    pub fn zm<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        super::run(&mut self.zm_cmd(args))
    }

    /// Our binary in the company's home, signing with its key.
    pub fn zm_cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> std::process::Command {
        let mut c = super::cmd(self.sb.path());
        c.args(args).env("GNUPGHOME", &self.gnupg);
        c
    }

    pub fn db_sync(&self, spec: &Path) -> Run {
        self.zm(&sync_args(&["db", "sync"], spec, &self.work, None, &[]))
    }

    pub fn bin_sync(&self, spec: &Path, extra: &[&str]) -> Run {
        let dest = self.site.join("pkgs");
        let r = self.zm(&sync_args(
            &["bin", "sync"],
            spec,
            &self.work,
            Some(&dest),
            extra,
        ));
        share(&self.site);
        r
    }

    pub fn build(&self, spec: &Path) -> (Run, PathBuf) {
        let r = self.zm(&[
            "build",
            "-c",
            spec.to_str().unwrap(),
            "--work",
            self.work.to_str().unwrap(),
            "-o",
            self.site.to_str().unwrap(),
        ]);
        share(&self.site);
        (r, self.site.join("acme-mirror-1.0.0"))
    }

    /// The repo.yaml at the HEAD of the company's registry.
    pub fn registry_repo_yaml(&self) -> String {
        git(
            &self.git_root.join("mirror.git"),
            &["show", "HEAD:repo.yaml"],
        )
    }

    /// The commit the company registry's `main` names.
    pub fn registry_head(&self) -> String {
        git(
            &self.git_root.join("mirror.git"),
            &["rev-parse", "refs/heads/main"],
        )
    }

    /// Where bin sync placed an archive (the spec's default layout).
    pub fn archive(&self, p: &Package) -> PathBuf {
        let (os, arch) = host_platform()
            .split_once('-')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap();
        self.site
            .join("pkgs")
            .join(p.tier)
            .join(os)
            .join(arch)
            .join(p.version)
            .join(p.file_name(&host_platform()))
    }
}

/// `COMMAND… -c SPEC --work WORK [--dest DEST] --format json EXTRA…`: how
/// the tests run `db sync`, `bin sync` and `sync`.
pub fn sync_args(
    command: &[&str],
    spec: &Path,
    work: &Path,
    dest: Option<&Path>,
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    v.extend(["-c".into(), spec.display().to_string()]);
    v.extend(["--work".into(), work.display().to_string()]);
    if let Some(dest) = dest {
        v.extend(["--dest".into(), dest.display().to_string()]);
    }
    v.extend(["--format".into(), "json".into()]);
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The `bin sync`/`sync` report's target for package `name` and `artifact`.
pub fn target<'a>(doc: &'a serde_json::Value, name: &str, artifact: &str) -> &'a serde_json::Value {
    doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["package"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/{name}"))
                && t["artifact"] == artifact
        })
        .unwrap_or_else(|| panic!("no {artifact} target for {name} in {doc:#}"))
}
