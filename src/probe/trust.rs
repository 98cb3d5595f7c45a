//! `check`'s view of signatures: the keys a client will hold, and whether
//! what it verifies (the registry's HEAD commit, each archive) verifies
//! against the keys it trusts — decided by [`crate::zoi::pgp`], the rules
//! and library Zoi 1.29.4 uses.
//!
//! Where the keys come from, as on a client:
//! - bundle mode: the extension's `pgp` changes and the mirror repo.yaml's
//!   `pgp` list (imported at every `zoi sync`, so it wins for a name both
//!   carry), fetched from the URLs the client would use;
//! - `--client`: the files in the machine's `pgps/` store.
//!
//! Zoi's built-in keys (`zillowe-main`, `zillowez`) are always in a
//! client's store; a trusted built-in name no source carries is noted, and
//! signatures by it cannot be judged here.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::report::{CheckKind, UrlCheck};
use crate::net::prober::{Method, Prober};
use crate::net::problem::{Kind, Problem};
use crate::zoi::pgp::{self, PublicKey, SigErrorKind};

/// Where a client gets a key from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fetched from a URL (or by fingerprint from keys.openpgp.org) at
    /// extension add (`from` = `extension`) or sync (`repo.yaml`).
    Url {
        name: String,
        key: String,
        from: &'static str,
    },
    /// Already in the machine's store.
    File { name: String, path: PathBuf },
}

impl KeySource {
    pub fn name(&self) -> &str {
        match self {
            KeySource::Url { name, .. } | KeySource::File { name, .. } => name,
        }
    }
}

/// The keys a client will hold, as parsed.
#[derive(Debug, Default)]
pub struct Store {
    /// (name, key), later sources overriding earlier ones of the same name.
    pub keys: Vec<(String, PublicKey)>,
    /// Names a client holds *before* its first `zoi sync`: Zoi verifies the
    /// cloned HEAD before it imports repo.yaml's keys, so only these can
    /// verify it then (the extension's, the machine's store, Zoi's
    /// built-in names).
    pub before_sync: Vec<String>,
}

impl Store {
    /// Zoi's `get_certs_by_name_or_fingerprint`: each identifier by name,
    /// or as a fingerprint prefix (case-insensitive). `Err(id)` names the
    /// first identifier with no key ("Trusted key 'id' not found in Zoi's
    /// PGP keyring").
    pub fn resolve(&self, ids: &[String]) -> Result<Vec<&PublicKey>, String> {
        let mut out = Vec::new();
        for id in ids {
            let lower = id.to_lowercase();
            let found = self.keys.iter().find(|(name, k)| {
                *name == *id || k.fingerprint().to_lowercase().starts_with(&lower)
            });
            match found {
                Some((_, k)) => out.push(k),
                None => return Err(id.clone()),
            }
        }
        Ok(out)
    }

    /// [`Store::resolve`] over the keys a new client holds when its first
    /// `zoi sync` verifies the HEAD.
    pub fn resolve_before_sync(&self, ids: &[String]) -> Result<Vec<&PublicKey>, String> {
        let early = Store {
            keys: self
                .keys
                .iter()
                .filter(|(n, _)| self.before_sync.contains(n))
                .cloned()
                .collect(),
            before_sync: Vec::new(),
        };
        let found = early.resolve(ids)?;
        // Back to references into `self`.
        Ok(found
            .into_iter()
            .filter_map(|k| {
                self.keys
                    .iter()
                    .find(|(_, own)| own.fingerprint() == k.fingerprint())
                    .map(|(_, own)| own)
            })
            .collect())
    }

    /// The name of a held key whose fingerprint one of `issuers` names.
    pub fn name_of(&self, issuers: &[String]) -> Option<&str> {
        self.keys.iter().find_map(|(name, k)| {
            let fpr = k.fingerprint();
            issuers
                .iter()
                .any(|i| {
                    fpr.eq_ignore_ascii_case(i) || fpr.to_uppercase().ends_with(&i.to_uppercase())
                })
                .then_some(name.as_str())
        })
    }
}

fn key_problem(e: &pgp::KeyError, name: &str, url: &str) -> Problem {
    Problem::new(Kind::KeyNotPgp, format!("key '{name}' at {url}: {e}"))
}

/// Fetches and parses every key source. Returns the store and one check
/// per source; a source is a failure only when one of `needed` names it
/// (a key nobody trusts cannot change what Zoi does), else a warning.
pub async fn load(
    prober: &Prober,
    sources: &[KeySource],
    needed: &[String],
) -> (Store, Vec<UrlCheck>) {
    let mut store = Store::default();
    let mut checks: Vec<UrlCheck> = Vec::new();
    let mut failed = Vec::new();
    for src in sources {
        let name = src.name().to_string();
        let is_needed = needed.contains(&name);
        let (mut c, bytes) = match src {
            KeySource::Url { key, from, .. } => {
                let source = pgp::key_source(key);
                let url = source.clone().unwrap_or_else(|_| key.clone());
                let mut c = UrlCheck::new(CheckKind::Key, &url);
                c.warnings.push(format!("key '{name}' ({from})"));
                let t = Instant::now();
                let bytes = match source.map(|u| url::Url::parse(&u).map_err(|e| e.to_string())) {
                    Err(e) | Ok(Err(e)) => Err(Problem::new(
                        Kind::KeyUnreachable,
                        format!("key '{name}': {e}"),
                    )),
                    Ok(Ok(u)) => {
                        let out = prober.send(&u, Method::Get(4 << 20)).await;
                        c.attempts += out.attempts;
                        match out.result {
                            Err(p) => Err(Problem::new(
                                Kind::KeyUnreachable,
                                format!("key '{name}' at {}: {}", c.url, p.message),
                            )),
                            Ok(r) => {
                                c.status = Some(r.status);
                                if (200..300).contains(&r.status) {
                                    Ok(r.body)
                                } else {
                                    Err(Problem::new(
                                        Kind::KeyUnreachable,
                                        format!("key '{name}' at {}: HTTP {}", c.url, r.status),
                                    ))
                                }
                            }
                        }
                    }
                };
                c.latency_ms = t.elapsed().as_secs_f64() * 1000.0;
                (c, bytes)
            }
            KeySource::File { path, .. } => {
                let c = UrlCheck::new(CheckKind::Key, &path.display().to_string());
                let bytes = std::fs::read(path).map_err(|e| {
                    Problem::new(Kind::KeyUnreachable, format!("{}: {e}", path.display()))
                });
                (c, bytes)
            }
        };
        c.warnings.clear();
        let parsed = bytes
            .and_then(|b| pgp::parse_public_key(&b).map_err(|e| key_problem(&e, &name, &c.url)));
        match parsed {
            Ok(k) => {
                let early = match src {
                    KeySource::File { .. } => true,
                    KeySource::Url { from, .. } => {
                        *from != "repo.yaml" || pgp::BUILTIN_KEYS.contains(&name.as_str())
                    }
                };
                if early && !store.before_sync.contains(&name) {
                    store.before_sync.push(name.clone());
                }
                store.keys.retain(|(n, _)| *n != name);
                store.keys.push((name, k));
            }
            Err(p) => failed.push((checks.len(), name, is_needed, p)),
        }
        checks.push(c);
    }
    // Zoi only warns when a key cannot be imported; what counts is whether
    // a trusted key ends up in the store: from another source of the same
    // name, or built into Zoi.
    for (i, name, is_needed, p) in failed {
        let held = store.keys.iter().any(|(n, _)| *n == name);
        let builtin = pgp::BUILTIN_KEYS.contains(&name.as_str());
        if is_needed && !held && !builtin {
            checks[i].fail(p);
        } else {
            let why = if held {
                "the client keeps the copy from another source"
            } else if builtin {
                "Zoi's built-in copy stays in the store"
            } else {
                "no client trusts it, so nothing depends on it"
            };
            checks[i].warnings.push(format!("{} ({why})", p.message));
        }
    }
    // A trusted identifier no source provides: Zoi fails every sync and
    // install that needs it.
    for id in needed {
        if store.resolve(std::slice::from_ref(id)).is_ok() {
            continue;
        }
        let mut c = UrlCheck::new(CheckKind::Key, &format!("pgps/{id}.asc"));
        if pgp::BUILTIN_KEYS.contains(&id.as_str()) {
            c.warnings.push(format!(
                "'{id}' is one of Zoi's built-in keys: every client has it, but check cannot verify signatures by it"
            ));
        } else if !checks.iter().any(|k| !k.ok && k.url.contains(id.as_str())) {
            c.fail(Problem::new(
                Kind::KeyUnreachable,
                format!(
                    "no key named '{id}' reaches the client (neither the extension's pgp changes nor repo.yaml's pgp list carry it): Zoi fails \"Trusted key '{id}' not found in Zoi's PGP keyring\""
                ),
            ));
        } else {
            continue;
        }
        checks.push(c);
    }
    (store, checks)
}

/// Judges a signature failure: its kind for `check`, and a message naming
/// which held key would verify it.
pub fn sig_problem(e: &pgp::SigError, store: &Store, trusted: &[String], what: &str) -> Problem {
    let kind = match e.kind {
        SigErrorKind::Untrusted => Kind::SignatureUntrusted,
        SigErrorKind::Bad | SigErrorKind::NotASignature => Kind::SignatureBad,
    };
    let mut msg = format!("{what}: {e}");
    if e.kind == SigErrorKind::Untrusted {
        msg.push_str(&format!(" (trusted: {})", trusted.join(", ")));
        if let Some(name) = store.name_of(&e.issuers) {
            msg.push_str(&format!(
                "; the key '{name}' would verify it: add it to the trusted keys (binaries.trust / authorities)"
            ));
        }
    }
    Problem::new(kind, msg)
}

/// The registry's HEAD commit, signed by one of the authorities (as `zoi
/// sync` checks it: each authority's certificate alone).
pub fn judge_commit(
    raw: &[u8],
    keys: &[&PublicKey],
    store: &Store,
    authorities: &[String],
) -> Result<(), Problem> {
    let Some((sig, payload)) = pgp::split_commit_signature(raw) else {
        return Err(Problem::new(
            Kind::RegistryUnsigned,
            "the registry's HEAD commit is not signed: Zoi aborts \"Registry commit is not signed. Sync aborted for security.\"",
        ));
    };
    pgp::verify_detached(&payload, &sig, keys)
        .map(|_| ())
        .map_err(|e| {
            let mut p = sig_problem(&e, store, authorities, "the registry's HEAD commit");
            p.kind = Kind::RegistryUnsigned;
            p.message.push_str(
                ": Zoi aborts \"Registry commit was signed but not by any authorized authority\"",
            );
            p
        })
}

/// The embedded signature of an archive on disk.
pub fn embedded_of(path: &std::path::Path) -> Result<Option<pgp::Embedded>, Problem> {
    std::fs::File::open(path)
        .and_then(zstd::Decoder::new)
        .and_then(pgp::embedded_signature)
        .map_err(|e| {
            Problem::new(
                Kind::SignatureBad,
                format!("cannot read the archive's entries for its manifest.sig: {e}"),
            )
        })
}

/// Streams `url` through SHA-512 (`--deep`), into a temp file too when
/// `keep` (the signature checks need the bytes again): (file, SHA-512,
/// length).
pub async fn fetch_hashed(
    prober: &Prober,
    url: &str,
    keep: bool,
) -> Result<(Option<tempfile::NamedTempFile>, String, u64), Problem> {
    use futures::StreamExt;
    use sha2::{Digest, Sha512};
    use std::io::Write;
    let u = url::Url::parse(url).map_err(|e| Problem::new(Kind::NotFound, e.to_string()))?;
    let resp = prober
        .http
        .send(
            reqwest::Method::GET,
            &u,
            &[],
            Some(Duration::from_secs(3600)),
        )
        .await
        .map_err(|e| crate::net::classify::classify(&e))?;
    let reply = crate::net::reply::Reply {
        status: resp.status().as_u16(),
        ..Default::default()
    };
    if let Some(p) = crate::net::reply::status_problem(&reply) {
        return Err(p);
    }
    let io = |e: std::io::Error| Problem::new(Kind::Connect, format!("temp file: {e}"));
    let mut file = if keep {
        Some(tempfile::NamedTempFile::new().map_err(io)?)
    } else {
        None
    };
    let mut hasher = Sha512::new();
    let mut len = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| crate::net::classify::classify(&e))?;
        hasher.update(&chunk);
        len += chunk.len() as u64;
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).map_err(io)?;
        }
    }
    if let Some(f) = file.as_mut() {
        f.flush().map_err(io)?;
    }
    Ok((file, hex::encode(hasher.finalize()), len))
}
