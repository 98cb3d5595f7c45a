//! The one vocabulary of failures a report carries: a [`Kind`] (serialised
//! as the snake_case names the README documents), a message, and the hint
//! that goes with the kind.
//!
//! The transport kinds are decided by `net::classify`; the others
//! (metadata, signatures, the registry) by the code that judges what came
//! back. Every kind's name and hint is part of the JSON contract.

use serde::Serialize;

string_enum! {
    /// What went wrong with a URL, as one of a fixed set of kinds.
    #[derive(PartialOrd, Ord)]
    pub enum Kind {
        Dns = "dns",
        ConnectRefused = "connect_refused",
        Connect = "connect",
        Tls = "tls",
        Timeout = "timeout",
        ConnectionReset = "connection_reset",
        /// The body ended before its announced length.
        Truncated = "truncated",
        RedirectLoop = "redirect_loop",
        RedirectOtherHost = "redirect_other_host",
        Unauthorized = "unauthorized",
        Forbidden = "forbidden",
        NotFound = "not_found",
        HttpError = "http_error",
        HtmlInsteadOfMetadata = "html_instead_of_metadata",
        MalformedMetadata = "malformed_metadata",
        /// `.files` (or the archive's manifest) places a file outside Zoi's roots.
        PathEscape = "path_escape",
        SizeMismatch = "size_mismatch",
        HashMismatch = "hash_mismatch",
        NoRange = "no_range",
        NotAGitRepo = "not_a_git_repo",
        HeadMissing = "head_missing",
        RegistryContentDiffers = "registry_content_differs",
        /// `bin sync`: upstream's signature does not verify (or is missing
        /// where upstream declares keys): the archive is not placed.
        Signature = "signature",
        /// A `.sig` (or embedded `manifest.sig`) made by none of the keys the
        /// client trusts.
        SignatureUntrusted = "signature_untrusted",
        /// Made by a trusted key, but not over these bytes.
        SignatureBad = "signature_bad",
        /// No signature where the client requires one.
        SignatureMissing = "signature_missing",
        /// A key URL that does not answer with a key.
        KeyUnreachable = "key_unreachable",
        /// A key URL answering with something that is not an OpenPGP public key.
        KeyNotPgp = "key_not_pgp",
        /// The registry's HEAD commit is not signed by one of the authorities.
        RegistryUnsigned = "registry_unsigned",
        /// A package `check` was asked about has no `.pkg.lua` in the registry
        /// at HEAD (or another version there): `zoi install` resolves from it.
        NotInRegistry = "not_in_registry",
        /// `bin sync`: writing on this machine failed (the destination's
        /// disk, its permissions), not the network; never retried.
        Io = "io",
    }
}

impl Kind {
    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Kind::Dns => {
                "the host name does not resolve: check it, your DNS, and HTTPS_PROXY/NO_PROXY"
            }
            Kind::ConnectRefused => {
                "nothing listens there: is the server running, and is the port right?"
            }
            Kind::Connect => "the connection failed: check the host, firewalls and proxy settings",
            Kind::Tls => {
                "the server's certificate is not trusted: pass your corporate CA with --ca-cert FILE (Zoi uses the OS store, so install the CA there for clients too)"
            }
            Kind::Timeout => "the server answered too slowly (Zoi gives up after 60 s per request)",
            Kind::ConnectionReset => {
                "the server dropped the connection: check its logs and any proxy in between"
            }
            Kind::Truncated => {
                "the server sent fewer bytes than it announced (Content-Length) and closed the connection: the file may be cut short on disk, or the server or a proxy in between dropped out mid-transfer; check the file's size on the host and the server's error log"
            }
            Kind::RedirectLoop => "the URL redirects in a loop: fix the server's rewrite rules",
            Kind::RedirectOtherHost => {
                "the URL redirects to another host: credentials are not sent there, and clients silently depend on it; serve the file from the mirror host"
            }
            Kind::Unauthorized => {
                "the server wants credentials: pass --header 'Authorization: …' (or ZOI_MIRROR_HEADER) to check; Zoi sends none, so clients fail the same way"
            }
            Kind::Forbidden => {
                "the server refuses access: check its permissions (and the credentials, if any)"
            }
            Kind::NotFound => {
                "not mirrored, or not where repo.yaml's URLs say: run `zoi-mirror bin sync`, or check the layout with `zoi-mirror index --layout`"
            }
            Kind::HttpError => {
                "the server answered with an error: a 5xx (or a storage service's error) is its own failure, see its error log; 429 asks for fewer requests (retried, as 408 and 425 are): lower the concurrency or raise the server's limits; any other 4xx refuses the request itself (not retried): check the URL, and any proxy or firewall rule in between"
            }
            Kind::HtmlInsteadOfMetadata => {
                "an HTML page (a login or error page from a proxy or SSO) answered instead of the file; Zoi would read the page as metadata: serve the file directly"
            }
            Kind::MalformedMetadata => "regenerate the metadata with `zoi-mirror index --force`",
            Kind::PathEscape => {
                "the archive's manifest installs files outside Zoi's store; re-indexing cannot fix that: rebuild the package from a trusted source (or remove the archive), then run `zoi-mirror index`"
            }
            Kind::SizeMismatch => {
                "the archive and its .size disagree: re-run `zoi-mirror index --force` over it"
            }
            Kind::HashMismatch => {
                "the archive does not match its .hash: re-fetch the archive (`zoi-mirror bin sync`) or re-index it"
            }
            Kind::NoRange => {
                "Zoi resumes interrupted downloads with Range requests: enable byte ranges on the server"
            }
            Kind::NotAGitRepo => {
                "the URL does not serve a git repository: check it, and that the forge allows anonymous clones"
            }
            Kind::HeadMissing => {
                "Zoi clones the registry's HEAD, which names no existing branch (`git init --bare` leaves it at master): point it at the synced branch with `git symbolic-ref HEAD refs/heads/<branch>` in the bare repository, or the forge's default-branch setting; clients that synced meanwhile keep an empty clone: remove their pkgs/db/<handle> and sync again"
            }
            Kind::RegistryContentDiffers => {
                "the mirror's repo.yaml is not the bundle's: run `zoi-mirror db sync`"
            }
            Kind::Signature => {
                "upstream's signature does not verify against upstream's keys: the archive may be tampered with upstream or in transit, so it was not placed; pass --allow-unsigned only for registries that publish no keys"
            }
            Kind::SignatureUntrusted => {
                "Zoi fails \"No valid signature found from any trusted key\": trust the key that signs the archives (binaries.trust, default upstream's), or re-sign them with `bin sync --sign KEY`"
            }
            Kind::SignatureBad => {
                "the archive changed after it was signed, or the signing key is no longer valid: re-fetch it with `zoi-mirror bin sync`"
            }
            Kind::SignatureMissing => {
                "clients that trust keys require a signature for every archive: mirror upstream's .sig with `zoi-mirror bin sync`, or re-sign with `bin sync --sign KEY`"
            }
            Kind::KeyUnreachable => {
                "Zoi cannot import the key, so it cannot verify anything signed with it: publish the key where the URL says (`zoi-mirror bin sync` copies upstream's keys)"
            }
            Kind::KeyNotPgp => {
                "the URL must serve the armored public key (`gpg --armor --export KEY`), not a page or a secret key"
            }
            Kind::NotInRegistry => {
                "the mirror's registry (at HEAD) does not carry that package at that version: run `zoi-mirror db sync`, or check the package and version"
            }
            Kind::Io => {
                "writing on this machine failed (a full disk, permissions, a read-only mount): fix that and run again; nothing half-written was placed"
            }
            Kind::RegistryUnsigned => {
                "`zoi sync` aborts \"Registry commit is not signed\": sign the overlay with registry.signing_key (`zoi-mirror db sync`) using a key among the authorities"
            }
        }
    }
}

/// A classified failure for one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub message: String,
    /// The HTTP status that made it, when one did: whether another attempt
    /// may help depends on it ([`crate::net::retry::retryable`]), not on the
    /// kind alone. Not part of the JSON (reports carry the status apart).
    #[serde(skip)]
    pub status: Option<u16>,
}

impl Problem {
    /// Messages often quote what a server sent: any secret it echoed
    /// (an `Authorization` value) is redacted here, where they are made.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: super::redact::redact_secrets(&message.into()),
            status: None,
        }
    }

    /// The problem an HTTP answer with this status made.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// A problem as reports serialise it: with the kind's hint.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemOut {
    pub kind: Kind,
    pub message: String,
    pub hint: &'static str,
}

impl From<Problem> for ProblemOut {
    fn from(p: Problem) -> Self {
        ProblemOut {
            hint: p.kind.hint(),
            kind: p.kind,
            message: p.message,
        }
    }
}

#[cfg(test)]
mod state_tests {
    use super::Kind;
    use std::collections::BTreeSet;

    /// `check --help` lists every kind a check can report: all of them but
    /// `signature` and `io`, which only bin sync reports.
    #[test]
    fn check_help_lists_every_problem_kind_check_reports() {
        let help: String = include_str!("../cli.rs")
            .lines()
            .map(|l| l.trim().trim_start_matches("///").trim())
            .collect::<Vec<_>>()
            .join(" ");
        let at = help
            .find("Error kinds: dns")
            .expect("check --help lists its error kinds");
        let rest = &help[at + "Error kinds: ".len()..];
        let documented: BTreeSet<&str> = rest[..rest.find('.').unwrap()]
            .split(',')
            .map(str::trim)
            .collect();
        let kinds: BTreeSet<&str> = Kind::ALL
            .iter()
            .filter(|&&k| k != Kind::Signature && k != Kind::Io)
            .map(|k| k.as_str())
            .collect();
        assert_eq!(documented, kinds);
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for k in Kind::ALL {
            assert_eq!(
                serde_json::to_string(k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }
}
