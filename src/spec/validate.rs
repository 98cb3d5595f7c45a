//! Checks across sections and against upstream's repo.yaml, run once
//! every section is read.
//!
//! - tiers: a declared tier must not be one of upstream's; `extension.tier`,
//!   `client.tiers` and `client.repo_add` must name upstream's or a declared
//!   one (hint: the closest name, then the list);
//! - `registry.authorities`: each is a fingerprint or the name of a key in
//!   upstream's repo.yaml or `[[client.pgp]]`;
//! - upstream's key names become file names (`<keys_dir>/<name>.asc` on the
//!   host, `pgps/<name>.asc` on every client), so they must be plain file
//!   names, and each key source one Zoi can fetch;
//! - trust: `binaries.trust` names known keys and has an effect, and
//!   clients that verify archives (authorities, or enforced trusted keys,
//!   which win) trust a key that can verify them — upstream's, or the
//!   re-signing `binaries.sign_key` — else every `zoi install` would fail.

use std::ops::Range;

use super::reader::{Ctx, Sp, suggest};
use super::urls::is_fingerprint;
use super::{ClientKey, UpstreamOrigin};
use crate::zoi::config::SignatureEnforcement;
use crate::zoi::repo::{PgpKey, RepoEntry, RepoYaml};

/// The tiers a spec may name: upstream's, then the declared ones.
pub(super) struct KnownTiers(Vec<String>);

impl KnownTiers {
    fn contains(&self, t: &str) -> bool {
        self.0.iter().any(|k| k == t)
    }

    /// The hint for an unknown tier `t`.
    fn hint(&self, t: &str) -> String {
        let mut h = match suggest(t, &self.0.iter().map(String::as_str).collect::<Vec<_>>()) {
            Some(s) => format!("did you mean '{s}'? "),
            None => String::new(),
        };
        h.push_str(&format!(
            "known tiers: {}; declare new ones under [[registry.tiers]]",
            self.0.join(", ")
        ));
        h
    }
}

/// Upstream's tiers plus `declared` (each refused if upstream has it), and
/// `extension.tier` checked against them.
pub(super) fn tiers(
    ctx: &mut Ctx<'_>,
    upstream: &RepoYaml,
    declared: &[(RepoEntry, Option<Range<usize>>)],
    extension_tier: Option<&Sp<String>>,
) -> KnownTiers {
    let mut known = KnownTiers(upstream.repos.iter().map(|r| r.name.clone()).collect());
    for (t, span) in declared {
        if known.contains(&t.name) {
            ctx.err(
                span.clone(),
                format!("tier '{}' is already one of upstream's tiers", t.name),
                Some("declare only tiers upstream does not have".into()),
            );
        } else {
            known.0.push(t.name.clone());
        }
    }
    if let Some(t) = extension_tier
        && !known.contains(&t.value)
    {
        ctx.err(
            t.span.clone(),
            format!(
                "`extension.tier` '{}' is neither one of upstream's tiers nor declared",
                t.value
            ),
            Some(known.hint(&t.value)),
        );
    }
    known
}

/// `client.tiers` and `client.repo_add` name known tiers.
pub(super) fn client_tiers(
    ctx: &mut Ctx<'_>,
    known: &KnownTiers,
    tiers: Option<&[Sp<String>]>,
    repo_add: Option<&[Sp<String>]>,
) {
    for (key, list) in [("tiers", tiers), ("repo_add", repo_add)] {
        for t in list.into_iter().flatten() {
            if !known.contains(&t.value) {
                ctx.err(
                    t.span.clone(),
                    format!(
                        "`client.{key}`: tier '{}' is neither one of upstream's tiers nor declared",
                        t.value
                    ),
                    Some(known.hint(&t.value)),
                );
            }
        }
    }
}

/// Each authority is a fingerprint or a key clients will have.
pub(super) fn authorities(
    ctx: &mut Ctx<'_>,
    authorities: &[Sp<String>],
    client_keys: &[ClientKey],
    upstream: &RepoYaml,
) {
    for a in authorities {
        let known_name = client_keys.iter().any(|k| k.name == a.value)
            || upstream.pgp.iter().any(|k| k.name == a.value);
        if !known_name && !is_fingerprint(&a.value) {
            ctx.err(
                a.span.clone(),
                format!("authority '{}' is neither a key fingerprint nor the name of a key in [[client.pgp]]", a.value),
                Some("Zoi checks the registry HEAD signature against keys in its key store; ship the key with [[client.pgp]]".into()),
            );
        }
    }
}

/// Upstream's keys are mirrored as files and fetched by every client.
pub(super) fn upstream_keys(ctx: &mut Ctx<'_>, upstream: &RepoYaml, origin: &UpstreamOrigin) {
    // Key names become file names (`<keys_dir>/<name>.asc` on the host,
    // `pgps/<name>.asc` on every client): never paths.
    let bad_key_name = |n: &str| !crate::zoi::names::archive_file_name_ok(n) || n.starts_with('.');
    for k in &upstream.pgp {
        if bad_key_name(&k.name) {
            ctx.err(
                None,
                format!(
                    "upstream's repo.yaml ({origin}) lists a key named {:?}, which is not a plain file name: mirrored, it would be written outside the keys folder and outside clients' key stores",
                    k.name
                ),
                Some("only letters, digits, '.', '_' and '-'; fix upstream's repo.yaml or pass a corrected copy with --upstream-repo-yaml".into()),
            );
        }
        if let Err(e) = crate::zoi::pgp::key_source(&k.key) {
            ctx.err(
                None,
                format!("upstream's repo.yaml ({origin}): key '{}': {e}", k.name),
                Some(
                    "fix upstream's repo.yaml or pass a corrected copy with --upstream-repo-yaml"
                        .into(),
                ),
            );
        }
    }
}

/// Each `binaries.trust` entry is a key the spec or upstream declares, or
/// a fingerprint.
pub(super) fn trust_names(
    ctx: &mut Ctx<'_>,
    trust: Option<&[Sp<String>]>,
    upstream: &RepoYaml,
    registry_keys: &[PgpKey],
    client_keys: &[ClientKey],
) {
    let key_known = |n: &str| {
        upstream.pgp.iter().any(|k| k.name == n)
            || registry_keys.iter().any(|k| k.name == n)
            || client_keys.iter().any(|k| k.name == n)
            || is_fingerprint(n)
    };
    for t in trust.into_iter().flatten() {
        if !key_known(&t.value) {
            let mut names: Vec<&str> = upstream.pgp.iter().map(|k| k.name.as_str()).collect();
            names.extend(client_keys.iter().map(|k| k.name.as_str()));
            ctx.err(
                t.span.clone(),
                format!("`binaries.trust`: '{}' is not a key upstream's repo.yaml, [[registry.keys]] or [[client.pgp]] declares, nor a fingerprint", t.value),
                Some(format!("known keys: {}", names.join(", "))),
            );
        }
    }
}

pub(super) struct TrustInputs<'a> {
    pub upstream: &'a RepoYaml,
    pub authorities: &'a [Sp<String>],
    pub enforcement: Option<&'a SignatureEnforcement>,
    pub enforcement_span: Option<Range<usize>>,
    pub trust: Option<&'a [Sp<String>]>,
    pub trust_span: Option<Range<usize>>,
    pub sign_key: Option<&'a str>,
    pub signing_key: Option<&'a str>,
    pub upstream_origin: &'a str,
}

/// Hex digits of a key id or fingerprint, upper-case.
fn key_hex(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .trim_start_matches("0x")
        .to_uppercase()
}

/// Refuses a spec whose clients verify archives (authorities, or enforced
/// trusted keys) against keys that cannot verify the archives it mirrors:
/// every `zoi install` would fail "No valid signature found from any
/// trusted key".
pub(super) fn check_trust(ctx: &mut Ctx<'_>, t: &TrustInputs<'_>) {
    let registry: Vec<String> = t.authorities.iter().map(|a| a.value.clone()).collect();
    if registry.is_empty() && t.enforcement.is_none_or(|e| !e.enable) {
        if let Some(span) = &t.trust_span {
            ctx.err(
                Some(span.clone()),
                "`binaries.trust` has no effect: clients verify archive signatures only with registry.authorities or system.signature_enforcement",
                Some("set registry.authorities, or remove binaries.trust".into()),
            );
        }
        return;
    }
    let upstream_names: Vec<&str> = t.upstream.pgp.iter().map(|k| k.name.as_str()).collect();
    let trust: Vec<String> = match t.trust {
        Some(list) => list.iter().map(|s| s.value.clone()).collect(),
        None => upstream_names.iter().map(|s| s.to_string()).collect(),
    };
    // What Zoi verifies archives against: enforced keys win over
    // authorities (`download_and_cache_archive`).
    let (verifying, span, what) = match t.enforcement.filter(|e| e.enable) {
        Some(e) => (
            e.trusted_keys.clone(),
            t.enforcement_span.clone(),
            "system.signature_enforcement.trusted_keys",
        ),
        None => {
            let mut all = registry.clone();
            all.extend(trust.iter().cloned());
            (
                all,
                t.trust_span
                    .clone()
                    .or_else(|| t.authorities.first().and_then(|a| a.span.clone())),
                if t.trust.is_some() {
                    "registry.authorities + binaries.trust"
                } else {
                    "registry.authorities"
                },
            )
        }
    };
    let trusts_upstream = verifying
        .iter()
        .any(|k| upstream_names.contains(&k.as_str()));
    let trusts_resign = t.sign_key.is_some_and(|sk| {
        let sk = key_hex(sk);
        verifying.iter().any(|k| {
            let k = key_hex(k);
            (is_fingerprint(&k) && (sk.ends_with(&k) || k.ends_with(&sk)))
                || (t.signing_key.is_some_and(|s| key_hex(s) == sk) && registry.contains(&k))
        }) || (t.signing_key.is_some_and(|s| key_hex(s) == sk)
            && verifying.iter().any(|k| registry.contains(k)))
    });
    if trusts_upstream || trusts_resign {
        return;
    }
    if upstream_names.is_empty() && t.sign_key.is_none() {
        ctx.err(
            span,
            format!(
                "clients verify every archive ({what}), but upstream ({}) declares no signing keys, so its archives are unsigned and every `zoi install` would fail",
                t.upstream_origin
            ),
            Some("re-sign the archives with binaries.sign_key (a key clients trust), or drop registry.authorities".into()),
        );
        return;
    }
    let signers = if t.sign_key.is_some() {
        format!(
            "upstream's {} or the re-signing key binaries.sign_key",
            upstream_names.join(", ")
        )
    } else {
        format!("upstream's key {}", upstream_names.join(", "))
    };
    ctx.err(
        span,
        format!(
            "clients would verify archives against {} ({what}), which cannot verify the mirrored archives: they are signed by {signers}; every `zoi install` would fail \"No valid signature found from any trusted key\"",
            if verifying.is_empty() { "no key".to_string() } else { verifying.join(", ") },
        ),
        Some(match upstream_names.first() {
            Some(k) => format!("add '{k}' (upstream's key) to binaries.trust, or re-sign with binaries.sign_key and trust that key"),
            None => "trust the key binaries.sign_key re-signs with".into(),
        }),
    );
}
