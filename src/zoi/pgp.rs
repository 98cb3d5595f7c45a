//! How Zoi 1.29.4 reads OpenPGP keys and verifies signatures.
//!
//! The rules, from `zoi-core` `pgp.rs` and `zoi-install` `installer.rs`
//! (`download_and_cache_archive`, `try_verify_embedded_signature`):
//!
//! - A key file is whatever `Cert::from_bytes` accepts (armored or binary,
//!   one certificate). Zoi stores it as `pgps/<name>.asc` and finds trusted
//!   keys by that name, or by a fingerprint prefix (case-insensitive). A
//!   trusted name missing from the store is an error before any signature is
//!   looked at: "Trusted key '<name>' not found in Zoi's PGP keyring."
//! - Archives are verified only when trusted identifiers exist: the system
//!   `policy.signature_enforcement.trusted_keys` (when enabled), else the
//!   registry entry's `authorities`.
//! - First the embedded signature: the first `manifest.json` and the last
//!   `manifest.sig` found anywhere in the tar (matched by file name), the
//!   signature over the manifest's bytes. Present but not verifying is a
//!   hard error — there is no fallback to the detached signature. `.zsa`
//!   source bundles skip this step.
//! - Else the detached signature at the link's `pgp` URL (default
//!   `<archive URL>.sig`), over the archive's bytes.
//! - A signature verifies when *any* signature in it verifies against *any*
//!   trusted certificate, under sequoia's `StandardPolicy` at the current
//!   time (`DetachedVerifierBuilder`, `MessageLayer::SignatureGroup`).
//!
//! We use the same library (sequoia-openpgp 2.x) and the same policy, so a
//! verdict here is Zoi's verdict. Errors carry a stable [`SigErrorKind`].

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::Cert;
use openpgp::packet::Packet;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
};
use openpgp::parse::{PacketParser, PacketParserResult, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::{KeyHandle, PacketPile};

/// Keys every Zoi 1.29.4 binary carries (`zoi-core` `src/builtin/pgp`) and
/// writes back into `pgps/` at every start (`ensure_builtin_keys`): a
/// client always has them, under these names, with these exact bytes.
pub const BUILTIN_KEYS: [&str; 2] = ["zillowe-main", "zillowez"];

/// Where `zoi` fetches a key named by a 40-hex fingerprint (`pgp` changes,
/// repo.yaml `pgp:` entries): `add_key_from_fingerprint`.
pub fn keyserver_url(fingerprint: &str) -> String {
    format!(
        "https://keys.openpgp.org/vks/v1/by-fingerprint/{}",
        fingerprint.to_uppercase()
    )
}

/// Where Zoi fetches a `key` value from (`sync_pgp_keys`, the `pgp`
/// change): one starting with `http` is a URL, a 40-hex one a fingerprint
/// looked up on keys.openpgp.org; anything else Zoi cannot import.
pub fn key_source(key: &str) -> Result<String, String> {
    if key.starts_with("http") {
        Ok(key.to_string())
    } else if is_fingerprint(key) {
        Ok(keyserver_url(key))
    } else {
        Err(format!(
            "{key:?} is neither an http(s) URL nor a 40-hex-digit fingerprint: Zoi cannot import it"
        ))
    }
}

/// Whether a repo.yaml/extension `key` value is a fingerprint (Zoi fetches
/// those from keys.openpgp.org) rather than a URL.
pub fn is_fingerprint(s: &str) -> bool {
    s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Why a key file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyErrorKind {
    /// Zero bytes.
    Empty,
    /// An HTML page (a login page, a 404 page served with 200).
    Html,
    /// Not an OpenPGP certificate at all.
    NotPgp,
    /// A certificate carrying secret key material: never publish it.
    Private,
    /// Parses, but sequoia's StandardPolicy rejects it now (revoked,
    /// expired, too weak): Zoi refuses to import it (`validate_cert`).
    Invalid,
}

impl KeyErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyErrorKind::Empty => "key_empty",
            KeyErrorKind::Html => "key_html",
            KeyErrorKind::NotPgp => "key_not_pgp",
            KeyErrorKind::Private => "key_private",
            KeyErrorKind::Invalid => "key_invalid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyError {
    pub kind: KeyErrorKind,
    pub message: String,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KeyError {}

/// A public key as Zoi would import it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub cert: Cert,
}

impl PublicKey {
    /// Upper-case hex fingerprint of the primary key.
    pub fn fingerprint(&self) -> String {
        self.cert.fingerprint().to_hex()
    }

    /// Whether this key (primary or a subkey) has the handle `h`.
    fn has(&self, h: &KeyHandle) -> bool {
        self.cert.keys().any(|k| k.key().key_handle().aliases(h))
    }
}

/// Parses a key file as Zoi's `add_key_from_bytes` does, and refuses what
/// a mirror must never publish (a private key).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    let err = |kind, message: String| Err(KeyError { kind, message });
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return err(KeyErrorKind::Empty, "the key file is empty".into());
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)])
        .trim_start()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<head")
    {
        return err(
            KeyErrorKind::Html,
            "an HTML page, not an OpenPGP key".into(),
        );
    }
    let cert = match Cert::from_bytes(bytes) {
        Ok(c) => c,
        Err(e) => {
            return err(
                KeyErrorKind::NotPgp,
                format!("not an OpenPGP public key: {e}"),
            );
        }
    };
    if cert.is_tsk() {
        return err(
            KeyErrorKind::Private,
            format!(
                "the file holds the SECRET key of {}: publish only the public key (`gpg --armor --export`)",
                cert.fingerprint().to_hex()
            ),
        );
    }
    let policy = StandardPolicy::new();
    if let Ok(vc) = cert.with_policy(&policy, None)
        && let Some(exp) = vc.primary_key().key_expiration_time()
        && exp < std::time::SystemTime::now()
    {
        return err(
            KeyErrorKind::Invalid,
            format!(
                "key {} has expired (Zoi refuses to import it: `validate_cert`)",
                cert.fingerprint().to_hex()
            ),
        );
    }
    if let Err(e) = cert.with_policy(&policy, None) {
        return err(
            KeyErrorKind::Invalid,
            format!(
                "key {} is not valid under OpenPGP's standard policy (Zoi refuses to import it): {e}",
                cert.fingerprint().to_hex()
            ),
        );
    }
    if let openpgp::types::RevocationStatus::Revoked(_) = cert.revocation_status(&policy, None) {
        return err(
            KeyErrorKind::Invalid,
            format!("key {} is revoked", cert.fingerprint().to_hex()),
        );
    }
    Ok(PublicKey { cert })
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigErrorKind {
    /// The file is not an OpenPGP signature.
    NotASignature,
    /// Made by no trusted key ("No valid signature found from any trusted
    /// key." in Zoi).
    Untrusted,
    /// Made by a trusted key, but not over these bytes (or by a key that is
    /// not valid now).
    Bad,
}

#[derive(Debug, Clone)]
pub struct SigError {
    pub kind: SigErrorKind,
    pub message: String,
    /// Fingerprints or key ids the signature names as its issuers.
    pub issuers: Vec<String>,
}

impl std::fmt::Display for SigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SigError {}

/// The issuers (fingerprints, else key ids) a detached signature names.
pub fn signature_issuers(sig: &[u8]) -> Result<Vec<KeyHandle>, SigError> {
    let not_sig = |m: String| SigError {
        kind: SigErrorKind::NotASignature,
        message: m,
        issuers: Vec::new(),
    };
    let pile = PacketPile::from_bytes(sig)
        .map_err(|e| not_sig(format!("not an OpenPGP signature: {e}")))?;
    let mut out: Vec<KeyHandle> = Vec::new();
    let mut any = false;
    for p in pile.descendants() {
        match p {
            Packet::Signature(s) => {
                any = true;
                // Fingerprints first: they say more than key ids.
                let mut issuers = s.get_issuers();
                issuers.sort_by_key(|h| !matches!(h, KeyHandle::Fingerprint(_)));
                if let Some(h) = issuers.into_iter().next()
                    && !out.iter().any(|o| o.aliases(&h))
                {
                    out.push(h);
                }
            }
            _ => {
                return Err(not_sig(
                    "not a detached signature: it holds other OpenPGP packets".into(),
                ));
            }
        }
    }
    if !any {
        return Err(not_sig("no signature packet in the file".into()));
    }
    Ok(out)
}

fn handles_text(hs: &[KeyHandle]) -> Vec<String> {
    hs.iter().map(KeyHandle::to_hex).collect()
}

/// Which of `keys` (by index) made one of the signatures in `sig`, judged
/// by issuer only (no bytes needed): what `check` can say without
/// downloading the archive.
pub fn signed_by(sig: &[u8], keys: &[&PublicKey]) -> Result<usize, SigError> {
    let issuers = signature_issuers(sig)?;
    for h in &issuers {
        if let Some(i) = keys.iter().position(|k| k.has(h)) {
            return Ok(i);
        }
    }
    Err(SigError {
        kind: SigErrorKind::Untrusted,
        message: format!(
            "signed by {}, which is none of the trusted keys",
            handles_text(&issuers).join(", ")
        ),
        issuers: handles_text(&issuers),
    })
}

struct Helper<'a> {
    certs: Vec<Cert>,
    outcome: &'a mut Option<SigErrorKind>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        // As Zoi's MultiCertHelper: the first layer is a signature group,
        // and any good signature in it is enough.
        if let Some(MessageLayer::SignatureGroup { results }) = structure.into_iter().next() {
            if results.iter().any(Result::is_ok) {
                return Ok(());
            }
            let trusted_but_bad = results.iter().any(|r| {
                matches!(
                    r,
                    Err(VerificationError::BadSignature { .. }
                        | VerificationError::BadKey { .. }
                        | VerificationError::UnboundKey { .. })
                )
            });
            let malformed = results.iter().all(|r| {
                matches!(
                    r,
                    Err(VerificationError::MalformedSignature { .. }
                        | VerificationError::UnknownSignature { .. })
                )
            });
            *self.outcome = Some(if trusted_but_bad {
                SigErrorKind::Bad
            } else if malformed {
                SigErrorKind::NotASignature
            } else {
                SigErrorKind::Untrusted
            });
            return Err(anyhow::anyhow!(
                "No valid signature found from any trusted key."
            ));
        }
        *self.outcome = Some(SigErrorKind::NotASignature);
        Err(anyhow::anyhow!("not a signature group"))
    }
}

/// Verifies a detached signature over `data` against `keys`, exactly as
/// Zoi's `verify_detached_signature_multi_key`. Returns the index of a key
/// that made a good signature.
pub fn verify_detached(data: &[u8], sig: &[u8], keys: &[&PublicKey]) -> Result<usize, SigError> {
    verify_with(sig, keys, |v| v.verify_bytes(data))
}

/// [`verify_detached`] over a file, streamed (archives can be large).
pub fn verify_detached_file(
    path: &std::path::Path,
    sig: &[u8],
    keys: &[&PublicKey],
) -> Result<usize, SigError> {
    verify_with(sig, keys, |v| v.verify_file(path))
}

/// [`verify_detached`] over a stream (an archive on its way from upstream
/// to object storage, never on disk).
pub fn verify_detached_reader<R: Read + Send + Sync>(
    reader: R,
    sig: &[u8],
    keys: &[&PublicKey],
) -> Result<usize, SigError> {
    verify_with(sig, keys, |v| v.verify_reader(reader))
}

fn verify_with(
    sig: &[u8],
    keys: &[&PublicKey],
    run: impl FnOnce(
        &mut openpgp::parse::stream::DetachedVerifier<'_, Helper<'_>>,
    ) -> openpgp::Result<()>,
) -> Result<usize, SigError> {
    let issuers = signature_issuers(sig)?;
    let policy = StandardPolicy::new();
    let mut outcome = None;
    let helper = Helper {
        certs: keys.iter().map(|k| k.cert.clone()).collect(),
        outcome: &mut outcome,
    };
    let result = DetachedVerifierBuilder::from_bytes(sig)
        .and_then(|b| b.with_policy(&policy, None, helper))
        .and_then(|mut v| run(&mut v));
    match result {
        Ok(()) => Ok(issuers
            .iter()
            .find_map(|h| keys.iter().position(|k| k.has(h)))
            .unwrap_or(0)),
        Err(e) => {
            let kind = outcome.unwrap_or(SigErrorKind::NotASignature);
            let by = handles_text(&issuers).join(", ");
            let message = match kind {
                SigErrorKind::Untrusted => {
                    format!("signed by {by}, which is none of the trusted keys")
                }
                SigErrorKind::Bad => format!(
                    "the signature by {by} does not match the bytes (changed after signing, or the key is not valid now)"
                ),
                SigErrorKind::NotASignature => format!("not a usable OpenPGP signature: {e}"),
            };
            Err(SigError {
                kind,
                message,
                issuers: handles_text(&issuers),
            })
        }
    }
}

/// The largest `manifest.json`/`manifest.sig` we read from an archive.
const MAX_EMBEDDED: u64 = 16 << 20;

/// The embedded signature of a `.zpa` (decompressed tar stream): the first
/// `manifest.json` and the last `manifest.sig`, matched by file name in any
/// folder, as `try_verify_embedded_signature` reads them. `None` unless
/// both are there (then Zoi falls back to the detached signature).
pub fn embedded_signature(tar_stream: impl Read) -> std::io::Result<Option<Embedded>> {
    let mut archive = tar::Archive::new(tar_stream);
    let mut manifest = None;
    let mut sig = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry
            .path()?
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        // A crafted archive must not make us hold gigabytes: real ones are
        // kilobytes.
        if matches!(name.as_deref(), Some("manifest.json" | "manifest.sig"))
            && entry.header().size()? > MAX_EMBEDDED
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} in the archive is larger than {} MiB",
                    name.as_deref().unwrap_or_default(),
                    MAX_EMBEDDED >> 20
                ),
            ));
        }
        match name.as_deref() {
            Some("manifest.json") if manifest.is_none() => {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf)?;
                manifest = Some(buf);
            }
            Some("manifest.sig") => {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf)?;
                sig = Some(buf);
            }
            _ => {}
        }
    }
    Ok(manifest.zip(sig))
}

/// `(manifest.json, manifest.sig)` bytes of an archive's embedded signature.
pub type Embedded = (Vec<u8>, Vec<u8>);

/// A git commit object split as libgit2's `extract_signature` (which `zoi
/// sync` uses) splits it: the `gpgsig` header's value (continuation lines
/// unindented) and the signed payload (the object without that header).
/// `None` for an unsigned commit.
pub fn split_commit_signature(raw: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    // Bytes, not text: a commit may declare another `encoding`.
    let header_end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |i| i + 1);
    let (headers, body) = raw.split_at(header_end);
    let mut payload = Vec::with_capacity(raw.len());
    let mut sig: Option<Vec<u8>> = None;
    let mut in_sig = false;
    for line in headers.split_inclusive(|b| *b == b'\n') {
        if in_sig {
            if let Some(cont) = line.strip_prefix(b" ") {
                sig.get_or_insert_with(Vec::new).extend_from_slice(cont);
                continue;
            }
            in_sig = false;
        }
        if let Some(rest) = line.strip_prefix(b"gpgsig ")
            && sig.is_none()
        {
            sig = Some(rest.to_vec());
            in_sig = true;
            continue;
        }
        payload.extend_from_slice(line);
    }
    payload.extend_from_slice(body);
    sig.map(|s| (s, payload))
}

/// Whether a byte stream starts like an OpenPGP packet or armor: used to
/// tell an HTML error page served as `.sig` from a signature.
pub fn looks_like_openpgp(bytes: &[u8]) -> bool {
    if bytes.starts_with(b"-----BEGIN PGP") {
        return true;
    }
    matches!(
        PacketParser::from_bytes(bytes),
        Ok(PacketParserResult::Some(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use openpgp::cert::CertBuilder;
    use openpgp::serialize::stream::{Message, Signer};
    use openpgp::serialize::{Serialize, SerializeInto};

    fn key(uid: &str) -> (Cert, PublicKey) {
        let (cert, _) = CertBuilder::general_purpose(Some(uid)).generate().unwrap();
        let public = parse_public_key(&cert.armored().to_vec().unwrap()).unwrap();
        (cert, public)
    }

    fn sign(cert: &Cert, data: &[u8]) -> Vec<u8> {
        let policy = StandardPolicy::new();
        let keypair = cert
            .keys()
            .unencrypted_secret()
            .with_policy(&policy, None)
            .for_signing()
            .next()
            .unwrap()
            .key()
            .clone()
            .into_keypair()
            .unwrap();
        let mut out = Vec::new();
        let m = Message::new(&mut out);
        let mut s = Signer::new(m, keypair).unwrap().detached().build().unwrap();
        std::io::Write::write_all(&mut s, data).unwrap();
        s.finalize().unwrap();
        out
    }

    #[test]
    fn good_signature_by_a_trusted_key() {
        let (a, pa) = key("a <a@x>");
        let (_, pb) = key("b <b@x>");
        let sig = sign(&a, b"archive bytes");
        assert_eq!(
            verify_detached(b"archive bytes", &sig, &[&pb, &pa]).unwrap(),
            1
        );
        assert_eq!(signed_by(&sig, &[&pb, &pa]).unwrap(), 1);
    }

    #[test]
    fn untrusted_signer() {
        let (a, _) = key("a <a@x>");
        let (_, pb) = key("b <b@x>");
        let sig = sign(&a, b"x");
        let e = verify_detached(b"x", &sig, &[&pb]).unwrap_err();
        assert_eq!(e.kind, SigErrorKind::Untrusted);
        assert_eq!(
            signed_by(&sig, &[&pb]).unwrap_err().kind,
            SigErrorKind::Untrusted
        );
        assert!(!e.issuers.is_empty());
    }

    #[test]
    fn bad_signature_over_changed_bytes() {
        let (a, pa) = key("a <a@x>");
        let sig = sign(&a, b"original");
        let e = verify_detached(b"tampered", &sig, &[&pa]).unwrap_err();
        assert_eq!(e.kind, SigErrorKind::Bad, "{e}");
    }

    #[test]
    fn not_a_signature() {
        let (_, pa) = key("a <a@x>");
        for junk in [&b"<html>nope</html>"[..], b"", b"\x00\x01garbage"] {
            let e = verify_detached(b"x", junk, &[&pa]).unwrap_err();
            assert_eq!(e.kind, SigErrorKind::NotASignature, "{junk:?}");
        }
        // a key is not a signature either
        let armored = pa.cert.armored().to_vec().unwrap();
        assert_eq!(
            signature_issuers(&armored).unwrap_err().kind,
            SigErrorKind::NotASignature
        );
    }

    #[test]
    fn commit_signatures_split_as_libgit2_does() {
        let (a, pa) = key("a <a@x>");
        let payload = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nmessage\n";
        let sig = String::from_utf8(armor_sig(&a, payload.as_bytes())).unwrap();
        let header: String = sig
            .trim_end()
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("gpgsig {l}\n")
                } else {
                    format!(" {l}\n")
                }
            })
            .collect();
        let (head, body) = payload.split_once("\n\n").unwrap();
        let raw = format!("{head}\n{header}\n{body}");
        let (s, p) = split_commit_signature(raw.as_bytes()).unwrap();
        assert_eq!(p, payload.as_bytes());
        assert_eq!(verify_detached(&p, &s, &[&pa]).unwrap(), 0);
        assert!(split_commit_signature(payload.as_bytes()).is_none());
    }

    fn armor_sig(cert: &Cert, data: &[u8]) -> Vec<u8> {
        let bin = sign(cert, data);
        let mut out = Vec::new();
        {
            let mut w =
                openpgp::armor::Writer::new(&mut out, openpgp::armor::Kind::Signature).unwrap();
            std::io::Write::write_all(&mut w, &bin).unwrap();
            w.finalize().unwrap();
        }
        out
    }

    #[test]
    fn expired_keys_are_refused_as_zoi_refuses_them() {
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86400);
        let (cert, _) = CertBuilder::general_purpose(Some("old <o@x>"))
            .set_creation_time(past)
            .set_validity_period(std::time::Duration::from_secs(86400))
            .generate()
            .unwrap();
        let e = parse_public_key(&cert.armored().to_vec().unwrap()).unwrap_err();
        assert_eq!(e.kind, KeyErrorKind::Invalid);
        assert!(e.message.contains("expired"), "{e}");
    }

    #[test]
    fn commits_in_another_encoding_still_split() {
        let raw = b"tree 4b82\nauthor \xe9 <a@x> 1 +0000\nencoding ISO-8859-1\ngpgsig -----BEGIN PGP SIGNATURE-----\n abc\n -----END PGP SIGNATURE-----\n\nm\xe9ssage\n";
        let (sig, payload) = split_commit_signature(raw).unwrap();
        assert_eq!(
            sig,
            b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
        );
        assert_eq!(
            payload,
            b"tree 4b82\nauthor \xe9 <a@x> 1 +0000\nencoding ISO-8859-1\n\nm\xe9ssage\n"
        );
    }

    #[test]
    fn key_sources_as_zoi_reads_them() {
        assert_eq!(key_source("https://h/k.asc").unwrap(), "https://h/k.asc");
        let fpr = "0123456789abcdef0123456789abcdef01234567";
        assert!(key_source(fpr).unwrap().ends_with(&fpr.to_uppercase()));
        assert!(key_source("file:///etc/k.asc").is_err());
    }

    #[test]
    fn key_file_kinds() {
        let (a, _) = key("a <a@x>");
        let kind = |b: &[u8]| parse_public_key(b).unwrap_err().kind;
        assert_eq!(kind(b""), KeyErrorKind::Empty);
        assert_eq!(kind(b"\n \n"), KeyErrorKind::Empty);
        assert_eq!(
            kind(b"<!DOCTYPE html><title>Sign in</title>"),
            KeyErrorKind::Html
        );
        assert_eq!(kind(b"hello"), KeyErrorKind::NotPgp);
        let mut secret = Vec::new();
        a.as_tsk().armored().serialize(&mut secret).unwrap();
        assert_eq!(kind(&secret), KeyErrorKind::Private);
        let public = a.armored().to_vec().unwrap();
        assert_eq!(
            parse_public_key(&public).unwrap().fingerprint(),
            a.fingerprint().to_hex()
        );
    }

    #[test]
    fn embedded_signature_reads_first_manifest_and_last_sig() {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", &b"first"[..]),
            ("pool/manifest.json", b"second"),
            ("manifest.sig", b"sig1"),
            ("x/manifest.sig", b"sig2"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, data).unwrap();
        }
        let raw = b.into_inner().unwrap();
        let (m, s) = embedded_signature(&raw[..]).unwrap().unwrap();
        assert_eq!((m.as_slice(), s.as_slice()), (&b"first"[..], &b"sig2"[..]));
        assert!(
            embedded_signature(&tar_with(&[("manifest.json", b"m")])[..])
                .unwrap()
                .is_none()
        );
    }

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }
}
