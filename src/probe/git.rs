//! Is a registry URL a git repository with the branch clients sync?
//!
//! For http(s) we ask the smart-HTTP discovery endpoint
//! (`info/refs?service=git-upload-pack`) through the shared prober, so the
//! same CA, proxy, auth and retry rules apply as for archives and the
//! answer costs one request. Other transports (`git://`, ssh, file) go
//! through the git command line, with prompts disabled so a missing
//! credential fails instead of hanging.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::fetch::{Kind, Method, Prober, Problem};

/// The result of probing one git URL.
#[derive(Debug)]
pub struct GitProbe {
    pub result: Result<(), Problem>,
    pub latency: Duration,
    pub status: Option<u16>,
    pub attempts: u32,
    pub warnings: Vec<String>,
}

/// Ref names from a git-upload-pack advertisement (pkt-line framed).
pub fn advertised_refs(body: &[u8]) -> Option<Vec<String>> {
    let mut refs = Vec::new();
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
        let before_caps = text.split('\0').next().unwrap_or_default();
        if let Some((_sha, name)) = before_caps.split_once(' ') {
            refs.push(name.to_string());
        }
    }
    saw_service.then_some(refs)
}

fn branch_ref(branch: &str) -> String {
    if branch == "HEAD" || branch.starts_with("refs/") {
        branch.to_string()
    } else {
        format!("refs/heads/{branch}")
    }
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
                format!("{} is not a valid URL", super::http::redact(url)),
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
    if let Some(p) = super::check::status_problem(&reply) {
        probe.result = Err(p);
        return probe;
    }
    let want = branch_ref(branch);
    let smart = reply
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/x-git-upload-pack-advertisement"));
    let refs = if smart {
        advertised_refs(&reply.body)
    } else {
        // A "dumb" HTTP server lists refs as `<sha>\t<ref>` lines.
        let text = String::from_utf8_lossy(&reply.body);
        let refs: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, r)| r.to_string()))
            .collect();
        if refs.is_empty() {
            None
        } else {
            probe
                .warnings
                .push("the server speaks only the dumb HTTP protocol (slow clones)".into());
            Some(refs)
        }
    };
    probe.result = match refs {
        None => Err(Problem::new(
            Kind::NotAGitRepo,
            format!(
                "{url} answered HTTP {} but not as a git repository",
                reply.status
            ),
        )),
        Some(r) if want == "HEAD" || r.contains(&want) => Ok(()),
        Some(_) => Err(Problem::new(
            Kind::BranchMissing,
            format!("no {want} in {}", super::http::redact(url)),
        )),
    };
    probe
}

/// Probes any git URL with `git ls-remote`.
pub async fn probe_cli(url: &str, branch: &str, timeout: Duration) -> GitProbe {
    let start = Instant::now();
    let want = branch_ref(branch);
    let child = tokio::process::Command::new("git")
        .args(["ls-remote", "--", url, &want])
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
                    super::http::redact(url)
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
        let first = super::http::scrub(
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
    if want != "HEAD" && String::from_utf8_lossy(&out.stdout).trim().is_empty() {
        probe.result = Err(Problem::new(
            Kind::BranchMissing,
            format!("no {want} in {}", super::http::redact(url)),
        ));
    }
    probe
}

/// `repo.yaml` at the tip of `branch` of `url` (a shallow, blob-light
/// clone into a temp dir; git's own credential helpers apply).
pub async fn repo_yaml_at_head(
    url: &str,
    branch: &str,
    timeout: Duration,
) -> Result<Vec<u8>, Problem> {
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
    if branch != "HEAD" {
        clone.args(["--branch", branch]);
    }
    clone.arg("--").arg(url).arg(&dir);
    let out = tokio::time::timeout(timeout, clone.output())
        .await
        .map_err(|_| {
            Problem::new(
                Kind::Timeout,
                format!(
                    "cloning {} took longer than {timeout:?}",
                    super::http::redact(url)
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
    let show = tokio::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["show", "HEAD:repo.yaml"])
        .output()
        .await
        .map_err(|e| Problem::new(Kind::Connect, format!("cannot run git: {e}")))?;
    if !show.status.success() {
        return Err(Problem::new(
            Kind::RegistryContentDiffers,
            "the registry has no repo.yaml at its root",
        ));
    }
    Ok(show.stdout)
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
            "{}0000{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!("{sha} refs/heads/main\0multi_ack side-band\n")),
            pkt(&format!("{sha} refs/tags/v1.0\n")),
        );
        assert_eq!(
            advertised_refs(body.as_bytes()).unwrap(),
            ["refs/heads/main", "refs/tags/v1.0"]
        );
        assert!(advertised_refs(b"<html>login</html>").is_none());
    }
}
