//! `db sync`: keep an internal mirror of the registry's git repository
//! current, carrying the corporate `repo.yaml`.
//!
//! The seed guide's `git clone --mirror` + `git push --mirror` copies
//! upstream, but the mirror must also point clients at the company's own
//! git and binary hosts (its `repo.yaml`), and that change has to survive
//! every later sync. So the mirror's branch is upstream's tip plus exactly
//! one *overlay* commit replacing `repo.yaml` (and, optionally, adding the
//! extension's `.pkg.lua`). Every other branch and tag mirrors upstream
//! exactly.
//!
//! The overlay is deterministic — fixed identity, dates taken from the
//! upstream tip — so an unchanged upstream gives the same commit id and the
//! push is a no-op. A signed overlay cannot be reproduced byte for byte (a
//! signature carries its own timestamp), so an existing overlay on the
//! target is reused whenever it already sits on the same upstream tip with
//! the same tree.
//!
//! Everything goes through the git command line (git ≥ 2.20), so
//! credentials come from git's own helpers and the user's SSH/GPG setup
//! just works. URLs are shown only with their credentials redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Failure, fail};
use crate::net::redact::{redact, scrub};
use crate::probe::git::{Listing, parse_ls_remote};

/// The oldest git this is tested to need.
pub const MIN_GIT: (u32, u32) = (2, 20);

/// Identity of overlay commits.
pub const IDENTITY_NAME: &str = "zoi-mirror";
pub const IDENTITY_EMAIL: &str = "zoi-mirror@localhost";

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub upstream: String,
    pub target: String,
    pub branch: String,
    pub work: PathBuf,
    /// The bundle's `repo.yaml`.
    pub repo_yaml: Vec<u8>,
    /// `(<tier>/<name>/<name>.pkg.lua, bytes)` with `--publish-extension`.
    pub extension: Option<(String, Vec<u8>)>,
    /// GnuPG key to sign the overlay with.
    pub signing_key: Option<String>,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefUpdate {
    #[serde(rename = "ref")]
    pub name: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub action: RefAction,
}

string_enum! {
    /// What a push does to one ref (`db sync --help` lists these).
    pub enum RefAction {
        /// The ref is new on the target.
        Create = "create",
        /// The ref moves to upstream's commit.
        Update = "update",
        /// The ref is gone upstream, so it goes from the target too.
        Delete = "delete",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub upstream: String,
    pub target: String,
    pub branch: String,
    pub work_dir: PathBuf,
    pub upstream_tip: String,
    pub overlay_commit: String,
    /// The overlay already on the target was kept (same tip, same tree).
    pub overlay_reused: bool,
    pub signed: bool,
    pub dry_run: bool,
    /// What moved on the target (or would, with --dry-run).
    pub updates: Vec<RefUpdate>,
    pub pushed: bool,
    /// Where the upstream repo.yaml the overlay derives from came from.
    pub upstream_repo_yaml: String,
    /// Problems that do not stop the sync, e.g. a target `HEAD` (what Zoi
    /// clones) that does not name the synced branch.
    pub warnings: Vec<String>,
}

/// What the work dir remembers between runs, to make a no-op cheap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
struct Cache {
    /// The URL `origin` points at (to skip `git remote set-url` when it
    /// did not change).
    #[serde(default)]
    upstream: String,
    upstream_tip: String,
    inputs_sha512: String,
    overlay: String,
}

const CACHE_FILE: &str = "zoi-mirror-overlay.json";

/// git with prompts off, in `dir` (when given), output captured.
fn git(dir: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command, what: &str, urls: &[&str]) -> Result<Output> {
    let out = c.output().map_err(|e| {
        Failure::new(ErrorKind::Git, format!("cannot run git ({what}): {e}"))
            .hint("install git 2.20 or newer")
    })?;
    if !out.status.success() {
        let stderr = scrub(String::from_utf8_lossy(&out.stderr).trim(), urls);
        anyhow::bail!("{what} failed: {stderr}");
    }
    Ok(out)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `git --version` ≥ [`MIN_GIT`].
pub fn check_git_version() -> Result<String> {
    let out = run(git(None, &["--version"]), "git --version", &[])?;
    let text = stdout(&out);
    let v: Vec<u32> = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .split('.')
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect();
    if v.len() == 2 && (v[0], v[1]) < MIN_GIT {
        return fail(
            Failure::new(ErrorKind::Git, format!("{text} is too old")).hint(format!(
                "db sync needs git {}.{} or newer",
                MIN_GIT.0, MIN_GIT.1
            )),
        );
    }
    Ok(text)
}

/// The default work dir for an upstream URL: one cache per upstream.
pub fn default_work_dir(upstream: &str) -> PathBuf {
    let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir);
    let digest = crate::bundle::manifest::sha512_hex(redact(upstream).as_bytes());
    let label: String = redact(upstream)
        .rsplit('/')
        .next()
        .unwrap_or("registry")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("zoi-mirror")
        .join("db")
        .join(format!("{label}-{}", &digest[..12]))
}

fn unreachable(which: &str, url: &str, e: anyhow::Error) -> anyhow::Error {
    Failure::new(
        ErrorKind::Unreachable,
        format!("cannot reach the {which} registry {}: {e:#}", redact(url)),
    )
    .hint(match which {
        "upstream" => "check the URL (--upstream), the network and git's credentials; nothing was pushed",
        _ => "check the URL (--target), that the forge accepts pushes, and git's credentials; nothing was changed there, and the next run resumes",
    })
    .into()
}

/// `ref → object` for refs/heads/* and refs/tags/* of a remote.
fn remote_refs(url: &str) -> Result<BTreeMap<String, String>> {
    let out = run(
        git(None, &["ls-remote", "--heads", "--tags", "--", url]),
        "git ls-remote",
        &[url],
    )?;
    Ok(parse_refs(&stdout(&out)))
}

/// Where the target's `HEAD` points.
fn remote_head(url: &str) -> Result<Listing> {
    let out = run(
        git(None, &["ls-remote", "--symref", "--", url, "HEAD"]),
        "git ls-remote --symref",
        &[url],
    )?;
    Ok(parse_ls_remote(&stdout(&out)))
}

/// A warning when the target's `HEAD` — the only thing Zoi clones — does
/// not name the synced branch.
fn head_warning(head: &Listing, branch: &str, target: &str) -> Option<String> {
    let want = format!("refs/heads/{branch}");
    let what = match (&head.head, &head.head_target) {
        (Some(_), Some(t)) if *t == want => return None,
        (None, Some(t)) => format!("names {t}, which does not exist"),
        (None, None) => "names no existing branch".to_string(),
        (Some(_), Some(t)) => format!(
            "names {}, not {branch}",
            t.strip_prefix("refs/heads/").unwrap_or(t)
        ),
        (Some(sha), None) => format!(
            "is detached at {}, not {branch}",
            sha.chars().take(12).collect::<String>()
        ),
    };
    let effect = if head.head.is_some() {
        "they get that commit, without the corporate repo.yaml"
    } else {
        "`zoi sync` fails (with authorities at once, without them on the run after an empty clone)"
    };
    Some(format!(
        "the HEAD of {} {what}: Zoi clients clone HEAD, so {effect}; make {branch} the forge's default branch, or run `git symbolic-ref HEAD {want}` in the bare repository",
        redact(target)
    ))
}

fn parse_refs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (sha, name) = l.split_once(char::is_whitespace)?;
            let name = name.trim();
            (!name.ends_with("^{}")
                && (name.starts_with("refs/heads/") || name.starts_with("refs/tags/")))
            .then(|| (name.to_string(), sha.to_string()))
        })
        .collect()
}

fn local_refs(work: &Path) -> Result<BTreeMap<String, String>> {
    let out = run(
        git(
            Some(work),
            &[
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                "refs/heads",
                "refs/tags",
            ],
        ),
        "git for-each-ref",
        &[],
    )?;
    Ok(parse_refs(&stdout(&out)))
}

/// Clones (first run) or fetches with prune (later runs) into the work dir.
fn update_work(o: &SyncOptions, cached_upstream: &str) -> Result<()> {
    let urls = [o.upstream.as_str()];
    if o.work.join("HEAD").exists() {
        if cached_upstream != o.upstream {
            run(
                git(Some(&o.work), &["remote", "set-url", "origin", &o.upstream]),
                "git remote set-url",
                &urls,
            )?;
        }
        run(
            git(Some(&o.work), &["fetch", "--prune", "--quiet", "origin"]),
            "git fetch",
            &urls,
        )
        .map_err(|e| unreachable("upstream", &o.upstream, e))?;
    } else {
        // Checked once, when the work dir is created: every later run uses
        // the same git.
        check_git_version()?;
        if let Some(p) = o.work.parent() {
            std::fs::create_dir_all(p).map_err(|e| crate::error::io_failure("create", p, &e))?;
        }
        let work = o.work.to_string_lossy().into_owned();
        run(
            git(
                None,
                &["clone", "--mirror", "--quiet", "--", &o.upstream, &work],
            ),
            "git clone --mirror",
            &urls,
        )
        .map_err(|e| unreachable("upstream", &o.upstream, e))?;
    }
    Ok(())
}

/// A file of the registry at `rev` in a work dir (`None` when the work dir,
/// the revision or the file is not there).
pub fn show_file(work: &Path, rev: &str, file: &str) -> Option<Vec<u8>> {
    if !work.join("HEAD").exists() {
        return None;
    }
    let out = git(Some(work), &["show", &format!("{rev}:{file}")])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// The commit a revision names in a work dir.
pub fn resolve(work: &Path, rev: &str) -> Option<String> {
    let out = git(
        Some(work),
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .stderr(Stdio::null())
    .output()
    .ok()?;
    out.status.success().then(|| stdout(&out))
}

/// Loads a spec against the upstream repo.yaml a command should derive the
/// mirror's from: the file given (`explicit`, else the spec's
/// `registry.upstream_repo_yaml`), else the one at the synced branch in the
/// `db sync` cache (`work`, default the cache for the spec's upstream), else
/// the built-in description. The spec says which in `upstream_origin`.
pub fn load_spec(
    path: &Path,
    explicit: Option<&Path>,
    work: Option<&Path>,
) -> Result<crate::spec::Spec> {
    use crate::spec::{UpstreamInput, UpstreamOrigin, load};
    if let Some(p) = explicit {
        return load(path, &UpstreamInput::File(p.to_path_buf()));
    }
    let spec = load(path, &UpstreamInput::Auto)?;
    if spec.upstream_origin != UpstreamOrigin::BuiltIn {
        return Ok(spec);
    }
    let work = work.map_or_else(
        || default_work_dir(&spec.registry.upstream),
        Path::to_path_buf,
    );
    let rev = format!("refs/heads/{}", spec.registry.branch);
    let (Some(bytes), Some(tip)) = (show_file(&work, &rev, "repo.yaml"), resolve(&work, &rev))
    else {
        return Ok(spec);
    };
    load(
        path,
        &UpstreamInput::Bytes {
            origin: format!(
                "upstream commit {} in the db sync cache {}",
                &tip[..tip.len().min(12)],
                work.display()
            ),
            bytes,
        },
    )
}

/// Refuses a spec whose clients require a signed registry HEAD
/// (`registry.authorities`) but that gives no key to sign the overlay with.
pub fn check_signing(spec: &crate::spec::Spec, spec_path: &Path) -> Result<()> {
    if !spec.registry.authorities.is_empty() && spec.registry.signing_key.is_none() {
        return fail(
            Failure::new(
                ErrorKind::UnsignedOverlay,
                format!(
                    "{} lists registry.authorities but no registry.signing_key: the overlay commit that carries the corporate repo.yaml would be unsigned",
                    spec_path.display()
                ),
            )
            .hint("clients with authorities require the registry HEAD to be signed by one of them and roll back `zoi sync` otherwise; set registry.signing_key to a key among the authorities"),
        );
    }
    Ok(())
}

/// A file of upstream's registry at the synced branch of the `db sync`
/// cache, or a `no_upstream_data` failure saying how to get it.
pub fn cached_file(work: &Path, branch: &str, file: &str) -> Result<Vec<u8>> {
    match show_file(work, &format!("refs/heads/{branch}"), file) {
        Some(bytes) => Ok(bytes),
        None => fail(
            Failure::new(
                ErrorKind::NoUpstreamData,
                format!("no upstream {file} in the db sync cache {}", work.display()),
            )
            .hint(format!(
                "run `zoi-mirror db sync` first, or pass --{} FILE|URL",
                if file == "packages.json" {
                    "index"
                } else {
                    "upstream-repo-yaml"
                }
            )),
        ),
    }
}

/// What a sync is about to do, once the spec has been read: the options
/// for [`fetch`]/[`publish`] and the lock that keeps two runs over the same
/// work dir apart (held for the life of the value).
pub struct Prepared {
    pub spec: crate::spec::Spec,
    pub opts: SyncOptions,
    /// The spec was read against an upstream repo.yaml given explicitly:
    /// [`overlay_for`] keeps it instead of the fetched one.
    pub explicit: bool,
    _lock: crate::client::Lock,
}

/// Where the sync reads from and pushes to: the given flags, else the spec.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    pub upstream: Option<String>,
    pub target: Option<String>,
    pub work: Option<PathBuf>,
    pub upstream_repo_yaml: Option<PathBuf>,
    pub dry_run: bool,
}

/// `db sync` from start to end: prepare (spec, lock, work dir), fetch
/// upstream, build the overlay for the spec, publish to the target; the
/// report names where upstream's repo.yaml came from.
pub fn sync_to_target(
    spec_path: &Path,
    endpoints: &Endpoints,
    lock_timeout: std::time::Duration,
    publish_extension: bool,
) -> Result<SyncReport> {
    let mut prepared = prepare(spec_path, endpoints, lock_timeout)?;
    let fetched = fetch(&prepared.opts)?;
    let spec = overlay_for(spec_path, &mut prepared, &fetched, publish_extension)?;
    let mut report = publish(&prepared.opts, fetched)?;
    report.upstream_repo_yaml = spec.upstream_origin.to_string();
    Ok(report)
}

/// Reads the spec against what is known before the fetch (the file given,
/// else the last fetched upstream in the cache) — enough to know where to
/// fetch from — and takes the work dir's lock, waiting at most
/// `lock_timeout`.
pub fn prepare(
    spec_path: &Path,
    e: &Endpoints,
    lock_timeout: std::time::Duration,
) -> Result<Prepared> {
    let spec = load_spec(
        spec_path,
        e.upstream_repo_yaml.as_deref(),
        e.work.as_deref(),
    )?;
    let explicit = matches!(spec.upstream_origin, crate::spec::UpstreamOrigin::File(_));
    check_signing(&spec, spec_path)?;
    let upstream = e
        .upstream
        .clone()
        .unwrap_or_else(|| spec.registry.upstream.clone());
    let work = e
        .work
        .clone()
        .unwrap_or_else(|| default_work_dir(&upstream));
    let opts = SyncOptions {
        target: e
            .target
            .clone()
            .unwrap_or_else(|| spec.registry.url.clone()),
        branch: spec.registry.branch.clone(),
        work: work.clone(),
        repo_yaml: Vec::new(),
        extension: None,
        signing_key: spec.registry.signing_key.clone(),
        dry_run: e.dry_run,
        upstream,
    };
    // One sync per work dir at a time (`db sync` and `sync` alike).
    let lock_dir = work
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let lock = crate::client::lock(&lock_dir, lock_timeout)?;
    Ok(Prepared {
        spec,
        opts,
        explicit,
        _lock: lock,
    })
}

/// Re-reads the spec against upstream's `repo.yaml` at the fetched tip
/// (unless one was given explicitly), so the overlay derives from the very
/// commit mirrored, and renders the overlay's files into `p.opts`. Returns
/// the spec the overlay was rendered from.
pub fn overlay_for(
    spec_path: &Path,
    p: &mut Prepared,
    fetched: &Fetched,
    publish_extension: bool,
) -> Result<crate::spec::Spec> {
    use crate::spec::UpstreamInput;
    let mut spec = p.spec.clone();
    if !p.explicit {
        let Some(bytes) = fetched.upstream_file(&p.opts, "repo.yaml") else {
            return fail(
                Failure::new(
                    ErrorKind::NoUpstreamRepoYaml,
                    format!(
                        "upstream {} has no repo.yaml at {} ({})",
                        redact(&p.opts.upstream),
                        spec.registry.branch,
                        fetched.tip
                    ),
                )
                .hint("is it a Zoi registry? pass a copy of its repo.yaml with --upstream-repo-yaml FILE"),
            );
        };
        spec = crate::spec::load(
            spec_path,
            &UpstreamInput::Bytes {
                origin: format!(
                    "upstream commit {}",
                    &fetched.tip[..fetched.tip.len().min(12)]
                ),
                bytes,
            },
        )?;
        check_signing(&spec, spec_path)?;
    }
    let rendered = crate::bundle::render(&spec)?;
    p.opts.repo_yaml = rendered.files[crate::bundle::REPO_YAML].clone();
    p.opts.extension = publish_extension.then(|| {
        let name = &spec.extension.name;
        (
            format!("{}/{name}/{name}.pkg.lua", spec.extension.tier),
            rendered.files[&crate::bundle::Bundle::extension_file(&spec)].clone(),
        )
    });
    Ok(spec)
}

/// The committer time of a commit in the work dir (Unix seconds).
pub fn commit_time(work: &Path, rev: &str) -> Option<i64> {
    let out = git(Some(work), &["log", "-1", "--format=%ct", rev, "--"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| stdout(&out).parse().ok())?
}

fn inputs_digest(o: &SyncOptions) -> String {
    let mut all = o.repo_yaml.clone();
    if let Some((path, bytes)) = &o.extension {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(bytes);
    }
    if let Some(k) = &o.signing_key {
        all.extend_from_slice(b"\0signed:");
        all.extend_from_slice(k.as_bytes());
    }
    crate::bundle::manifest::sha512_hex(&all)
}

/// The tree of `tip` with repo.yaml (and the extension) replaced.
fn overlay_tree(o: &SyncOptions, tip: &str) -> Result<String> {
    let w = Some(o.work.as_path());
    let blob = |bytes: &[u8]| -> Result<String> {
        let mut c = git(w, &["hash-object", "-w", "--stdin"]);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn()?;
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(bytes)?;
        let out = child.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "git hash-object failed");
        Ok(stdout(&out))
    };
    let index = tempfile::NamedTempFile::new()?;
    let with_index = |args: &[&str]| {
        let mut c = git(w, args);
        c.env("GIT_INDEX_FILE", index.path());
        c
    };
    run(with_index(&["read-tree", tip]), "git read-tree", &[])?;
    let mut entries = vec![("repo.yaml".to_string(), blob(&o.repo_yaml)?)];
    if let Some((path, bytes)) = &o.extension {
        entries.push((path.clone(), blob(bytes)?));
    }
    for (path, sha) in entries {
        let info = format!("100644,{sha},{path}");
        run(
            with_index(&["update-index", "--add", "--cacheinfo", &info]),
            "git update-index",
            &[],
        )?;
    }
    Ok(stdout(&run(
        with_index(&["write-tree"]),
        "git write-tree",
        &[],
    )?))
}

/// An overlay on the target worth keeping: parent = tip, same tree, and
/// signed when signing is asked for.
fn reusable(o: &SyncOptions, candidate: &str, tip: &str, tree: &str) -> bool {
    if !ensure_commit(o, candidate) {
        return false;
    }
    let w = Some(o.work.as_path());
    let info = git(
        w,
        &[
            "log",
            "-1",
            "--format=%P%x00%T%x00%G?%x00%GF%x00%GP",
            candidate,
        ],
    )
    .output();
    let Ok(info) = info else { return false };
    let text = stdout(&info);
    let fields: Vec<&str> = text.split('\0').collect();
    // The overlay's first parent is the upstream tip (a second one, the
    // previous overlay, keeps clients on a fast-forward).
    let first_parent = fields.first().and_then(|p| p.split(' ').next());
    let same = first_parent == Some(tip) && fields.get(1) == Some(&tree);
    let signed_ok = match &o.signing_key {
        None => true,
        // A good signature (G, or U: good but of unknown validity) by the
        // key configured now: after a key rotation the old overlay is
        // re-signed, since clients may list only the new authority.
        Some(key) => {
            let key: String = key
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
            let good = fields.get(2).is_some_and(|g| matches!(*g, "G" | "U"));
            let by_key = fields
                .iter()
                .skip(3)
                .any(|fpr| !fpr.is_empty() && fpr.trim().to_uppercase().ends_with(&key));
            good && by_key
        }
    };
    same && signed_ok
}

/// Whether `sha` is a commit in the work dir, fetching the target's branch
/// when it is not (an overlay pushed by another machine's sync).
fn ensure_commit(o: &SyncOptions, sha: &str) -> bool {
    let w = Some(o.work.as_path());
    let have = || {
        git(w, &["cat-file", "-e", &format!("{sha}^{{commit}}")])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if have() {
        return true;
    }
    let branch_ref = format!("refs/heads/{}", o.branch);
    let fetched = git(
        w,
        &[
            "fetch",
            "--quiet",
            "--no-tags",
            "--",
            &o.target,
            &branch_ref,
        ],
    )
    .stderr(Stdio::null())
    .status()
    .is_ok_and(|s| s.success());
    fetched && have()
}

/// Creates the overlay commit on `tip`. Its second parent is the overlay
/// clients have now (`prev`): Zoi only ever fast-forwards a registry it has
/// cloned ("Cannot fast-forward", and the old clone stays), so each overlay
/// must descend from the previous one, not only from upstream's tip.
fn commit_overlay(o: &SyncOptions, tip: &str, tree: &str, prev: Option<&str>) -> Result<String> {
    let w = Some(o.work.as_path());
    // Dates from the upstream tip: the same upstream gives the same commit.
    let date = stdout(&run(
        git(w, &["log", "-1", "--format=%ct %cz", tip]),
        "git log",
        &[],
    )?);
    let message = format!(
        "zoi-mirror: corporate repo.yaml\n\nOverlay on upstream {tip}, rewritten by every `zoi-mirror db sync`.\n"
    );
    let mut args = vec!["commit-tree", tree, "-p", tip];
    if let Some(p) = prev {
        args.extend(["-p", p]);
    }
    args.extend(["-m", &message]);
    let sign_arg;
    if let Some(key) = &o.signing_key {
        sign_arg = format!("-S{key}");
        args.push(&sign_arg);
    }
    let mut c = git(w, &args);
    c.env("GIT_AUTHOR_NAME", IDENTITY_NAME)
        .env("GIT_AUTHOR_EMAIL", IDENTITY_EMAIL)
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_NAME", IDENTITY_NAME)
        .env("GIT_COMMITTER_EMAIL", IDENTITY_EMAIL)
        .env("GIT_COMMITTER_DATE", &date);
    let out = run(c, "git commit-tree", &[]).map_err(|e| {
        if o.signing_key.is_some() {
            Failure::new(ErrorKind::Signing, format!("cannot sign the overlay commit: {e:#}"))
                .hint("check that the key in registry.signing_key is in your GnuPG keyring and usable without a prompt")
                .into()
        } else {
            e
        }
    })?;
    Ok(stdout(&out))
}

/// What [`fetch`] learnt: upstream's tip in the work dir and the target's
/// refs, before anything is pushed.
#[derive(Debug)]
pub struct Fetched {
    pub tip: String,
    target_refs: BTreeMap<String, String>,
    target_head: Result<Listing>,
    desired: BTreeMap<String, String>,
    cache: Cache,
}

impl Fetched {
    /// A file of upstream's registry at the fetched tip.
    pub fn upstream_file(&self, o: &SyncOptions, file: &str) -> Option<Vec<u8>> {
        show_file(&o.work, &self.tip, file)
    }
}

/// Runs one sync: [`fetch`], then [`publish`].
pub fn sync(o: &SyncOptions) -> Result<SyncReport> {
    let f = fetch(o)?;
    publish(o, f)
}

/// Step one: fetch upstream into the work dir and learn the target's refs.
/// Nothing is pushed; `o.repo_yaml` is not used yet, so the caller can
/// derive it from the fetched upstream.
pub fn fetch(o: &SyncOptions) -> Result<Fetched> {
    let cache_path = o.work.join(CACHE_FILE);
    let cache: Cache = std::fs::read(&cache_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();

    // Learn the target's refs while the upstream fetch runs: a no-op sync
    // then costs about one fetch.
    let target = o.target.clone();
    let target_refs = std::thread::spawn(move || remote_refs(&target));
    let target = o.target.clone();
    let target_head = std::thread::spawn(move || remote_head(&target));
    let fetched = update_work(o, &cache.upstream);
    let target_refs = target_refs.join().expect("ls-remote thread");
    let target_head = target_head.join().expect("ls-remote thread");
    fetched?;
    let target_refs = target_refs.map_err(|e| unreachable("target", &o.target, e))?;

    let branch_ref = format!("refs/heads/{}", o.branch);
    let desired = local_refs(&o.work)?;
    let Some(tip) = desired.get(&branch_ref).cloned() else {
        return fail(
            Failure::new(
                ErrorKind::BranchMissing,
                format!(
                    "upstream {} has no branch {}",
                    redact(&o.upstream),
                    o.branch
                ),
            )
            .hint("set registry.branch in the spec to the upstream branch clients sync"),
        );
    };
    Ok(Fetched {
        tip,
        target_refs,
        target_head,
        desired,
        cache,
    })
}

/// Step two: the overlay commit carrying `o.repo_yaml` on the fetched tip,
/// and the push of every ref that differs.
pub fn publish(o: &SyncOptions, f: Fetched) -> Result<SyncReport> {
    let Fetched {
        tip,
        target_refs,
        target_head,
        mut desired,
        cache,
    } = f;
    let cache_path = o.work.join(CACHE_FILE);
    let branch_ref = format!("refs/heads/{}", o.branch);
    let inputs = inputs_digest(o);
    let (overlay, reused) = if cache.upstream_tip == tip
        && cache.inputs_sha512 == inputs
        && target_refs.get(&branch_ref) == Some(&cache.overlay)
    {
        (cache.overlay.clone(), true)
    } else {
        let tree = overlay_tree(o, &tip)?;
        match target_refs.get(&branch_ref) {
            Some(existing) if reusable(o, existing, &tip, &tree) => (existing.clone(), true),
            // A previous overlay (anything but upstream's own tip) becomes
            // the second parent; one we cannot get is left out.
            existing => {
                let prev = existing
                    .filter(|p| **p != tip)
                    .filter(|p| ensure_commit(o, p))
                    .map(String::as_str);
                (commit_overlay(o, &tip, &tree, prev)?, false)
            }
        }
    };
    let new_cache = Cache {
        upstream: o.upstream.clone(),
        upstream_tip: tip.clone(),
        inputs_sha512: inputs,
        overlay: overlay.clone(),
    };
    if new_cache != cache {
        let _ = crate::fsutil::atomic_write(&cache_path, &serde_json::to_vec(&new_cache)?);
    }
    desired.insert(branch_ref, overlay.clone());

    let mut updates = Vec::new();
    for (name, new) in &desired {
        match target_refs.get(name) {
            Some(old) if old == new => {}
            old => updates.push(RefUpdate {
                name: name.clone(),
                old: old.cloned(),
                new: Some(new.clone()),
                action: if old.is_some() {
                    RefAction::Update
                } else {
                    RefAction::Create
                },
            }),
        }
    }
    for (name, old) in &target_refs {
        if !desired.contains_key(name) {
            updates.push(RefUpdate {
                name: name.clone(),
                old: Some(old.clone()),
                new: None,
                action: RefAction::Delete,
            });
        }
    }

    let mut pushed = false;
    if !o.dry_run && !updates.is_empty() {
        let specs: Vec<String> = updates
            .iter()
            .map(|u| match &u.new {
                Some(new) => format!("{new}:{}", u.name),
                None => format!(":{}", u.name),
            })
            .collect();
        // Forced (upstream force-pushes, the overlay is rewritten), but only
        // over what we saw on the target a moment ago: a concurrent push by
        // someone else makes the whole (atomic) push fail instead of being
        // overwritten.
        let leases: Vec<String> = updates
            .iter()
            .map(|u| {
                format!(
                    "--force-with-lease={}:{}",
                    u.name,
                    u.old.as_deref().unwrap_or_default()
                )
            })
            .collect();
        let mut args = vec!["push", "--porcelain", "--atomic", "--quiet"];
        args.extend(leases.iter().map(String::as_str));
        args.extend(["--", o.target.as_str()]);
        args.extend(specs.iter().map(String::as_str));
        run(git(Some(&o.work), &args), "git push", &[&o.target])
            .map_err(|e| unreachable("target", &o.target, e))?;
        pushed = true;
    }

    // Zoi clones the target's HEAD: after a push (a forge may have made the
    // first pushed branch its default) ask again; a dry run that would move
    // refs cannot tell yet.
    let head = if pushed {
        Some(remote_head(&o.target))
    } else if updates.is_empty() {
        Some(target_head)
    } else {
        None
    };
    let mut warnings = Vec::new();
    match head {
        Some(Ok(h)) => warnings.extend(head_warning(&h, &o.branch, &o.target)),
        Some(Err(e)) => warnings.push(format!(
            "cannot learn the HEAD of {} (what Zoi clones): {e:#}",
            redact(&o.target)
        )),
        None => {}
    }

    Ok(SyncReport {
        upstream: redact(&o.upstream),
        target: redact(&o.target),
        branch: o.branch.clone(),
        work_dir: o.work.clone(),
        upstream_tip: tip,
        overlay_commit: overlay,
        overlay_reused: reused,
        signed: o.signing_key.is_some(),
        dry_run: o.dry_run,
        updates,
        pushed,
        upstream_repo_yaml: String::new(),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ls_remote_output() {
        let refs = parse_refs(
            "a1\tHEAD\nb2\trefs/heads/main\nc3\trefs/tags/v1\nd4\trefs/tags/v1^{}\ne5\trefs/merge-requests/1/head\n",
        );
        assert_eq!(refs.len(), 2);
        assert_eq!(refs["refs/tags/v1"], "c3");
    }

    #[test]
    fn a_head_other_than_the_synced_branch_warns() {
        let t = "git://h/r.git";
        let ok = parse_ls_remote("ref: refs/heads/main\tHEAD\na1\tHEAD\n");
        assert_eq!(head_warning(&ok, "main", t), None);
        let w = head_warning(&ok, "dev", t).unwrap();
        assert!(w.contains("names main, not dev"), "{w}");
        let w = head_warning(&parse_ls_remote(""), "main", t).unwrap();
        assert!(w.contains("names no existing branch"), "{w}");
        assert!(w.contains("`zoi sync` fails"), "{w}");
        assert!(w.contains("git symbolic-ref HEAD refs/heads/main"), "{w}");
        let w = head_warning(&parse_ls_remote("a1\tHEAD\n"), "main", t).unwrap();
        assert!(w.contains("detached"), "{w}");
    }
}

#[cfg(test)]
mod state_tests {
    use super::RefAction;

    /// `db sync --help` documents the ref actions scripts match on.
    #[test]
    fn db_sync_help_lists_every_ref_action() {
        crate::assert_documents(
            include_str!("../cli.rs"),
            "new, action: ",
            "action: ",
            RefAction::ALL.iter().map(|a| a.as_str()),
        );
    }
}
