//! Throw-away GnuPG homes and keys (real `gpg`), for signing registry
//! commits and archives in tests.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn gpg(home: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("gpg")
        .arg("--batch")
        .args(args)
        .env("GNUPGHOME", home)
        .output()
        .expect("run gpg");
    assert!(
        out.status.success(),
        "gpg {args:?} in {}: {}",
        home.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Creates an empty GnuPG home (mode 0700, as gpg wants it).
pub fn new_home(home: &Path) -> PathBuf {
    fs::create_dir_all(home).unwrap();
    fs::set_permissions(home, fs::Permissions::from_mode(0o700)).unwrap();
    home.to_path_buf()
}

/// The fingerprints of the secret keys in `home`.
pub fn secret_fingerprints(home: &Path) -> Vec<String> {
    let out = gpg(home, &["--with-colons", "--list-secret-keys"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("fpr:"))
        .filter_map(|l| l.split(':').nth(9))
        .map(str::to_string)
        .collect()
}

/// Adds a new ed25519 signing key without passphrase; returns its
/// fingerprint (40 upper-case hex digits).
pub fn add_key(home: &Path, uid: &str) -> String {
    let before = if home.join("pubring.kbx").exists() {
        secret_fingerprints(home)
    } else {
        Vec::new()
    };
    gpg(
        home,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ],
    );
    secret_fingerprints(home)
        .into_iter()
        .find(|f| !before.contains(f))
        .expect("a new key")
}

/// The ASCII-armoured public key `fpr`.
pub fn export(home: &Path, fpr: &str) -> Vec<u8> {
    gpg(home, &["--armor", "--export", fpr]).stdout
}

/// Copies a GnuPG home (keyrings, private keys, trust db), leaving out the
/// agent's sockets and lock files, so the copy gets its own agent.
pub fn copy_home(from: &Path, to: &Path) {
    new_home(to);
    for e in walkdir::WalkDir::new(from)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = e.file_name().to_string_lossy();
        if name.starts_with("S.") || name.starts_with(".#lk") || name.ends_with(".lock") {
            continue;
        }
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dst).unwrap();
            fs::set_permissions(&dst, fs::Permissions::from_mode(0o700)).unwrap();
        } else if e.file_type().is_file() {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// Stops the gpg-agent (and any other daemon) gpg started for `home`.
pub fn kill_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .args(["--kill", "all"])
        .env("GNUPGHOME", home)
        .output();
}

/// `gpg --verify SIG DATA` against the keys in `home`: whether it verifies.
pub fn verifies(home: &Path, sig: &Path, data: &Path) -> bool {
    Command::new("gpg")
        .args(["--batch", "--verify"])
        .arg(sig)
        .arg(data)
        .env("GNUPGHOME", home)
        .output()
        .expect("run gpg")
        .status
        .success()
}

/// A throw-away GnuPG home with one signing key; returns its fingerprint.
pub fn throwaway_gpg_key(gnupghome: &Path) -> String {
    new_home(gnupghome);
    add_key(gnupghome, "Mirror Signing <sign@acme.example>")
}
