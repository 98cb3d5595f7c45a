//! Is a registry URL a git repository whose `HEAD` Zoi can clone?
//!
//! Zoi clones the remote's `HEAD` (shallow) and never reads a branch name,
//! so `HEAD` decides: absent, or naming a branch that does not exist (an
//! unborn `HEAD`, as `git init --bare` leaves it), is a failure; naming a
//! branch other than the spec's `registry.branch` is a warning.
//!
//! For http(s) we ask the smart-HTTP discovery endpoint
//! (`info/refs?service=git-upload-pack`) through the shared prober, so the
//! same CA, proxy, auth and retry rules apply as for archives and the
//! answer costs one request. Other transports (`git://`, ssh, file) go
//! through the git command line, with prompts disabled so a missing
//! credential fails instead of hanging.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::net::prober::{Method, Prober};
use crate::net::problem::{Kind, Problem};

/// The result of probing one git URL.
#[derive(Debug)]
pub struct GitProbe {
    pub result: Result<(), Problem>,
    pub latency: Duration,
    pub status: Option<u16>,
    pub attempts: u32,
    pub warnings: Vec<String>,
}

/// What a remote advertises: its refs, and where `HEAD` points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// `HEAD`'s object, when advertised (an unborn `HEAD` is not).
    pub head: Option<String>,
    /// The ref `HEAD` points at, when the server says (`symref`).
    pub head_target: Option<String>,
    /// `ref → object` of everything else advertised.
    pub refs: BTreeMap<String, String>,
}

impl Listing {
    fn add(&mut self, sha: &str, name: &str) {
        if name == "HEAD" {
            self.head = Some(sha.to_string());
        } else if !name.ends_with("^{}") {
            self.refs.insert(name.to_string(), sha.to_string());
        }
    }

    /// Branch names (without `refs/heads/`).
    fn branches(&self) -> Vec<&str> {
        self.refs
            .keys()
            .filter_map(|r| r.strip_prefix("refs/heads/"))
            .collect()
    }
}

/// A git-upload-pack advertisement (pkt-line framed, protocol v0/v1):
/// `None` when the body is not one.
pub fn parse_advertisement(body: &[u8]) -> Option<Listing> {
    let mut out = Listing::default();
    let mut i = 0;
    let mut saw_service = false;
    while i + 4 <= body.len() {
        let len = usize::from_str_radix(std::str::from_utf8(&body[i..i + 4]).ok()?, 16).ok()?;
        if len == 0 {
            i += 4;
            continue;
        }
        if len < 4 || i + len > body.len() {
            return None;
        }
        let line = &body[i + 4..i + len];
        i += len;
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\n');
        if text.starts_with("# service=") {
            saw_service = true;
            continue;
        }
        let mut parts = text.splitn(2, '\0');
        let before_caps = parts.next().unwrap_or_default();
        if let Some(caps) = parts.next() {
            for cap in caps.split(' ') {
                if let Some(target) = cap.strip_prefix("symref=HEAD:") {
                    out.head_target = Some(target.to_string());
                }
            }
        }
        if let Some((sha, name)) = before_caps.split_once(' ') {
            out.add(sha, name);
        }
    }
    saw_service.then_some(out)
}

/// `git ls-remote --symref` output.
pub fn parse_ls_remote(text: &str) -> Listing {
    let mut out = Listing::default();
    for line in text.lines() {
        let Some((left, name)) = line.split_once('\t') else {
            continue;
        };
        match left.strip_prefix("ref: ") {
            Some(target) if name == "HEAD" => out.head_target = Some(target.trim().to_string()),
            Some(_) => {}
            None => out.add(left.trim(), name.trim()),
        }
    }
    out
}

fn branch_ref(branch: &str) -> String {
    if branch == "HEAD" || branch.starts_with("refs/") {
        branch.to_string()
    } else {
        format!("refs/heads/{branch}")
    }
}

/// Zoi's verdict on a listing, for the spec's `branch` (`HEAD` when none):
/// `HEAD` must name an existing branch; another branch than the spec's, or
/// the spec's branch missing, is a warning.
pub fn judge_head(url: &str, l: &Listing, branch: &str) -> (Result<(), Problem>, Vec<String>) {
    let shown = crate::net::redact::redact(url);
    let want = branch_ref(branch);
    let want_exists = want == "HEAD" || l.refs.contains_key(&want);
    let mut warnings = Vec::new();
    let Some(head) = &l.head else {
        let branches = l.branches();
        let names = if branches.is_empty() {
            "it has no branches".to_string()
        } else {
            format!("branches: {}", branches.join(", "))
        };
        let fix = match (want_exists && want != "HEAD", branches.as_slice()) {
            (true, _) => format!(
                "; run `git symbolic-ref HEAD {want}` in the bare repository, or make {branch} the forge's default branch"
            ),
            (false, [only]) => format!(
                "; run `git symbolic-ref HEAD refs/heads/{only}` in the bare repository, or make {only} the forge's default branch"
            ),
            _ => String::new(),
        };
        let what = match &l.head_target {
            Some(t) => format!("HEAD of {shown} names {t}, which does not exist"),
            None => format!("HEAD of {shown} names no existing branch"),
        };
        return (
            Err(Problem::new(
                Kind::HeadMissing,
                format!(
                    "{what} ({names}): Zoi clones HEAD, so `zoi sync` fails with authorities, and without them gets an empty registry and fails on the next run{fix}"
                ),
            )),
            warnings,
        );
    };
    match &l.head_target {
        Some(target) if want != "HEAD" && *target != want => {
            let short = target.strip_prefix("refs/heads/").unwrap_or(target);
            let fix = if want_exists {
                format!(
                    "run `git symbolic-ref HEAD {want}` in the bare repository, or make {branch} the forge's default branch"
                )
            } else {
                format!(
                    "{branch} does not exist there: check registry.branch (`db sync` publishes the overlay on it)"
                )
            };
            warnings.push(format!(
                "HEAD of {shown} names {short}, not the spec's branch {branch}: Zoi clones HEAD, so clients get {short}; {fix}"
            ));
        }
        Some(_) => {}
        None => {
            if want == "HEAD" || l.refs.get(&want) != Some(head) {
                let short: String = head.chars().take(12).collect();
                warnings.push(format!(
                    "HEAD of {shown} is not advertised as a branch (detached at {short}?): Zoi clones that commit"
                ));
            }
            if !want_exists {
                warnings.push(format!(
                    "no {want} in {shown} (the spec's branch): Zoi clones HEAD instead"
                ));
            }
        }
    }
    (Ok(()), warnings)
}

/// Probes a smart-HTTP git URL.
pub async fn probe_http(prober: &Prober, url: &str, branch: &str) -> GitProbe {
    let discovery = format!(
        "{}/info/refs?service=git-upload-pack",
        url.trim_end_matches('/')
    );
    let Ok(u) = url::Url::parse(&discovery) else {
        return GitProbe {
            result: Err(Problem::new(
                Kind::NotAGitRepo,
                format!("{} is not a valid URL", crate::net::redact::redact(url)),
            )),
            latency: Duration::ZERO,
            status: None,
            attempts: 0,
            warnings: Vec::new(),
        };
    };
    let out = prober.send(&u, Method::Get(8 << 20)).await;
    let mut probe = GitProbe {
        result: Ok(()),
        latency: out.latency,
        status: None,
        attempts: out.attempts,
        warnings: Vec::new(),
    };
    let reply = match out.result {
        Ok(r) => r,
        Err(p) => {
            probe.result = Err(p);
            return probe;
        }
    };
    probe.status = Some(reply.status);
    if let Some(p) = crate::net::reply::status_problem(&reply) {
        probe.result = Err(p);
        return probe;
    }
    let smart = reply
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-git-upload-pack-advertisement"));
    let listing = if smart {
        parse_advertisement(&reply.body)
    } else {
        // A "dumb" HTTP server lists refs as `<sha>\t<ref>` lines, and
        // serves HEAD as a file.
        let text = String::from_utf8_lossy(&reply.body);
        let mut l = Listing::default();
        for (sha, name) in text.lines().filter_map(|l| l.split_once('\t')) {
            l.add(sha.trim(), name.trim());
        }
        if l.refs.is_empty() {
            None
        } else {
            probe
                .warnings
                .push("the server speaks only the dumb HTTP protocol (slow clones)".into());
            dumb_head(prober, url, &mut l, &mut probe).await;
            Some(l)
        }
    };
    let Some(listing) = listing else {
        probe.result = Err(Problem::new(
            Kind::NotAGitRepo,
            format!(
                "{} answered HTTP {} but not as a git repository",
                crate::net::redact::redact(url),
                reply.status
            ),
        ));
        return probe;
    };
    let (result, warnings) = judge_head(url, &listing, branch);
    probe.result = result;
    probe.warnings.extend(warnings);
    probe
}

/// `HEAD` of a dumb-HTTP repository, from its `HEAD` file.
async fn dumb_head(prober: &Prober, url: &str, l: &mut Listing, probe: &mut GitProbe) {
    let Ok(u) = url::Url::parse(&format!("{}/HEAD", url.trim_end_matches('/'))) else {
        return;
    };
    let out = prober.send(&u, Method::Get(4096)).await;
    probe.attempts += out.attempts;
    probe.latency += out.latency;
    let Ok(reply) = out.result else { return };
    if reply.status != 200 {
        return;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let text = text.trim();
    match text.strip_prefix("ref:") {
        Some(target) => {
            let target = target.trim().to_string();
            l.head = l.refs.get(&target).cloned();
            l.head_target = Some(target);
        }
        None if text.len() >= 40 && text.chars().all(|c| c.is_ascii_hexdigit()) => {
            l.head = Some(text.to_string());
        }
        None => {}
    }
}

/// Probes any git URL with `git ls-remote`.
pub async fn probe_cli(url: &str, branch: &str, timeout: Duration) -> GitProbe {
    let start = Instant::now();
    let want = branch_ref(branch);
    let mut args = vec!["ls-remote", "--symref", "--", url, "HEAD"];
    if want != "HEAD" {
        args.push(&want);
    }
    let child = tokio::process::Command::new("git")
        .args(&args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o ConnectTimeout=10",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let mut probe = GitProbe {
        result: Ok(()),
        latency: Duration::ZERO,
        status: None,
        attempts: 1,
        warnings: Vec::new(),
    };
    let out = match tokio::time::timeout(timeout, child).await {
        Err(_) => {
            probe.result = Err(Problem::new(
                Kind::Timeout,
                format!(
                    "git ls-remote {} took longer than {timeout:?}",
                    crate::net::redact::redact(url)
                ),
            ));
            probe.latency = start.elapsed();
            return probe;
        }
        Ok(Err(e)) => {
            probe.result = Err(Problem::new(Kind::Connect, format!("cannot run git: {e}")));
            return probe;
        }
        Ok(Ok(o)) => o,
    };
    probe.latency = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    if !out.status.success() {
        let kind = if stderr.contains("could not resolve") || stderr.contains("name or service") {
            Kind::Dns
        } else if stderr.contains("connection refused") {
            Kind::ConnectRefused
        } else if stderr.contains("does not appear to be a git repository")
            || stderr.contains("not found")
            || stderr.contains("not a git repository")
        {
            Kind::NotAGitRepo
        } else if stderr.contains("timed out") {
            Kind::Timeout
        } else {
            Kind::Connect
        };
        let first = crate::net::redact::scrub(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("git ls-remote failed")
                .trim(),
            &[url],
        );
        probe.result = Err(Problem::new(kind, first));
        return probe;
    }
    let listing = parse_ls_remote(&String::from_utf8_lossy(&out.stdout));
    let (result, mut warnings) = judge_head(url, &listing, branch);
    probe.result = match result {
        // Zoi reads a local directory in place (a symlink), without
        // cloning it: its HEAD does not matter.
        Err(p) if p.kind == Kind::HeadMissing && std::path::Path::new(url).is_dir() => {
            warnings.push(format!(
                "{} (a local directory: Zoi reads it in place, without cloning)",
                p.message
            ));
            Ok(())
        }
        r => r,
    };
    probe.warnings = warnings;
    probe
}

/// The remote's `HEAD` — what Zoi clones — of `url`: its commit and
/// `repo.yaml` (a shallow clone into a temp dir; git's own credential
/// helpers apply).
pub async fn head_snapshot(url: &str, timeout: Duration) -> Result<HeadSnapshot, Problem> {
    let tmp = tempfile::tempdir().map_err(|e| Problem::new(Kind::Connect, e.to_string()))?;
    let dir = tmp.path().join("r");
    let mut clone = tokio::process::Command::new("git");
    clone
        .args(["clone", "--quiet", "--depth", "1", "--no-checkout"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    clone.arg("--").arg(url).arg(&dir);
    let out = tokio::time::timeout(timeout, clone.output())
        .await
        .map_err(|_| {
            Problem::new(
                Kind::Timeout,
                format!(
                    "cloning {} took longer than {timeout:?}",
                    crate::net::redact::redact(url)
                ),
            )
        })?
        .map_err(|e| Problem::new(Kind::Connect, format!("cannot run git: {e}")))?;
    if !out.status.success() {
        return Err(Problem::new(
            Kind::NotAGitRepo,
            format!(
                "git clone failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let git_out = |args: &'static [&'static str]| {
        let dir = dir.clone();
        async move {
            tokio::process::Command::new("git")
                .arg("-C")
                .arg(&dir)
                .args(args)
                .output()
                .await
                .map_err(|e| Problem::new(Kind::Connect, format!("cannot run git: {e}")))
        }
    };
    let show = git_out(&["show", "HEAD:repo.yaml"]).await?;
    let commit = git_out(&["cat-file", "commit", "HEAD"]).await?;
    let tree = git_out(&["ls-tree", "-r", "--name-only", "-z", "HEAD"]).await?;
    let mut pkg_luas = PkgLuas::new();
    let mut wanted = Vec::new();
    for path in tree.stdout.split(|b| *b == 0) {
        let path = String::from_utf8_lossy(path);
        // `<tier…>/<name>/<name>.pkg.lua`: the file Zoi resolves.
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() >= 3
            && let Some(name) = parts[parts.len() - 1].strip_suffix(".pkg.lua")
            && parts[parts.len() - 2] == name
        {
            let tier = parts[..parts.len() - 2].join("/");
            wanted.push((tier, name.to_string(), path.to_string()));
        }
    }
    // Their versions, when written literally (`version = "1.2.3"`), in
    // one `git cat-file --batch`.
    let mut batch = tokio::process::Command::new("git");
    batch
        .arg("-C")
        .arg(&dir)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut versions = Vec::new();
    if let Ok(mut child) = batch.spawn() {
        use tokio::io::AsyncWriteExt;
        let mut input = String::new();
        for (_, _, path) in &wanted {
            input.push_str(&format!("HEAD:{path}\n"));
        }
        // Written while the output is read: a registry with thousands of
        // packages fills both pipes otherwise, and both sides wait.
        let writer = child.stdin.take().map(|mut stdin| {
            tokio::spawn(async move {
                let _ = stdin.write_all(input.as_bytes()).await;
            })
        });
        if let Ok(Ok(out)) = tokio::time::timeout(timeout, child.wait_with_output()).await {
            versions = split_batch(&out.stdout);
        }
        if let Some(w) = writer {
            w.abort();
        }
    }
    for (i, (tier, name, _)) in wanted.into_iter().enumerate() {
        let v = versions.get(i).and_then(|b| literal_version(b));
        pkg_luas.insert((tier, name), v);
    }
    Ok(HeadSnapshot {
        repo_yaml: show.status.success().then_some(show.stdout),
        pkg_luas,
        commit: commit.stdout,
    })
}

/// `repo.yaml` at the remote's HEAD, read synchronously (planning happens
/// before the runtime starts); `None` when it cannot be had.
pub fn repo_yaml_at_head_blocking(url: &str, timeout: Duration) -> Option<Vec<u8>> {
    let tmp = tempfile::tempdir().ok()?;
    let dir = tmp.path().join("r");
    let mut child = std::process::Command::new("git")
        .args(["clone", "--quiet", "--depth", "1", "--no-checkout", "--"])
        .arg(url)
        .arg(&dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    // A remote that never answers must not hang the plan: give up (the
    // registry check that follows says why) after `timeout`.
    let deadline = std::time::Instant::now() + timeout;
    let ok = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.success(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
        }
    };
    if !ok {
        return None;
    }
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["show", "HEAD:repo.yaml"])
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// `(tier, name)` → the literal `version` of its `.pkg.lua`, if any.
pub type PkgLuas = std::collections::BTreeMap<(String, String), Option<String>>;

/// The objects of `git cat-file --batch` output, in order.
fn split_batch(out: &[u8]) -> Vec<Vec<u8>> {
    let mut objects = Vec::new();
    let mut rest = out;
    while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
        let header = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        let size: usize = match header.split(' ').nth(2).and_then(|s| s.parse().ok()) {
            Some(s) => s,
            None => {
                objects.push(Vec::new()); // "<name> missing"
                continue;
            }
        };
        let end = size.min(rest.len());
        objects.push(rest[..end].to_vec());
        rest = &rest[(end + 1).min(rest.len())..];
    }
    objects
}

/// `version = "X"` in a `.pkg.lua`'s `metadata({...})`, when literal.
fn literal_version(lua: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(lua);
    let re = regex::Regex::new(r#"(?m)^\s*version\s*=\s*["']([^"']+)["']"#).ok()?;
    re.captures(&text).map(|c| c[1].to_string())
}

/// What a shallow clone of the remote's HEAD holds, as Zoi gets it.
#[derive(Debug, Clone)]
pub struct HeadSnapshot {
    /// `repo.yaml` at the root, if there is one.
    pub repo_yaml: Option<Vec<u8>>,
    /// Every `<tier>/<name>/<name>.pkg.lua` at HEAD (what `zoi install`
    /// resolves), with its version when the file writes it literally.
    pub pkg_luas: PkgLuas,
    /// The HEAD commit object (`git cat-file commit HEAD`), with its
    /// `gpgsig` header when signed.
    pub commit: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    #[test]
    fn parses_an_upload_pack_advertisement() {
        let sha = "95dcfa3633004da0049d3d0fa03f80589cbcaf31";
        let body = format!(
            "{}0000{}{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!(
                "{sha} HEAD\0multi_ack side-band symref=HEAD:refs/heads/main agent=git/2\n"
            )),
            pkt(&format!("{sha} refs/heads/main\n")),
            pkt(&format!("{sha} refs/tags/v1.0\n")),
        );
        let l = parse_advertisement(body.as_bytes()).unwrap();
        assert_eq!(l.head.as_deref(), Some(sha));
        assert_eq!(l.head_target.as_deref(), Some("refs/heads/main"));
        assert_eq!(
            l.refs.keys().collect::<Vec<_>>(),
            ["refs/heads/main", "refs/tags/v1.0"]
        );
        assert!(parse_advertisement(b"<html>login</html>").is_none());
        // an unborn HEAD: not advertised, no symref
        let body = format!(
            "{}0000{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!("{sha} refs/heads/main\0multi_ack side-band\n")),
        );
        let l = parse_advertisement(body.as_bytes()).unwrap();
        assert_eq!((&l.head, &l.head_target), (&None, &None));
        assert_eq!(l.branches(), ["main"]);
    }

    #[test]
    fn parses_ls_remote_symref_output() {
        let l = parse_ls_remote("ref: refs/heads/main\tHEAD\na1\tHEAD\na1\trefs/heads/main\n");
        assert_eq!(l.head.as_deref(), Some("a1"));
        assert_eq!(l.head_target.as_deref(), Some("refs/heads/main"));
        assert_eq!(l.branches(), ["main"]);
        assert_eq!(parse_ls_remote(""), Listing::default());
    }

    fn listing(head: Option<&str>, refs: &[&str]) -> Listing {
        Listing {
            head: head.map(|_| "a1".to_string()),
            head_target: head.map(|h| format!("refs/heads/{h}")),
            refs: refs
                .iter()
                .map(|r| (format!("refs/heads/{r}"), "a1".to_string()))
                .collect(),
        }
    }

    #[test]
    fn head_decides_the_verdict() {
        let u = "git://h/r.git";
        // HEAD unborn, only main pushed: fails, and names the fix
        let (r, w) = judge_head(u, &listing(None, &["main"]), "main");
        let p = r.unwrap_err();
        assert_eq!(p.kind, Kind::HeadMissing);
        assert!(p.message.contains(u), "{}", p.message);
        assert!(
            p.message.contains("git symbolic-ref HEAD refs/heads/main"),
            "{}",
            p.message
        );
        assert!(w.is_empty());
        // also when no branch is asked for (`--repo-yaml` without --branch)
        let (r, _) = judge_head(u, &listing(None, &["main"]), "HEAD");
        assert_eq!(r.unwrap_err().kind, Kind::HeadMissing);
        let (r, _) = judge_head(u, &Listing::default(), "main");
        assert!(r.unwrap_err().message.contains("no branches"));
        // HEAD fine
        let (r, w) = judge_head(u, &listing(Some("main"), &["main"]), "main");
        assert!(r.is_ok() && w.is_empty(), "{w:?}");
        let (r, w) = judge_head(u, &listing(Some("main"), &["main"]), "HEAD");
        assert!(r.is_ok() && w.is_empty(), "{w:?}");
        // HEAD names another branch than the spec's: a warning
        let (r, w) = judge_head(u, &listing(Some("main"), &["main", "dev"]), "dev");
        assert!(r.is_ok());
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("names main, not the spec's branch dev"),
            "{w:?}"
        );
        // the spec's branch missing while HEAD is fine: a warning only
        let (r, w) = judge_head(u, &listing(Some("main"), &["main"]), "nope");
        assert!(r.is_ok());
        assert!(w[0].contains("nope does not exist"), "{w:?}");
        // detached HEAD (no symref): a warning unless it is the branch's commit
        let mut l = listing(Some("main"), &["main"]);
        l.head_target = None;
        assert!(judge_head(u, &l, "main").1.is_empty());
        l.head = Some("b2".into());
        let (r, w) = judge_head(u, &l, "main");
        assert!(r.is_ok() && w[0].contains("detached"), "{w:?}");
    }
}
