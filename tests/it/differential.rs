//! `check` against the real client (issue 13): one mirror, filled from the
//! faithful upstream as IT would fill it (`db sync`, `bin sync`, `build`),
//! put into one state after another — healthy, and broken in every way Zoi
//! can trip on. For each state `check` (bundle mode, and `--client` mode on
//! a machine the bundle was applied to) and the real zoi 1.29.4 (`apply`,
//! `zoi sync`, `zoi install` of one package, as an ordinary user) must reach
//! the same verdict, and when both fail `check` must name the right kind.
//! The table is printed, so a reader sees the agreement.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::Spec;
use crate::support::company::Company;
use crate::support::gitd::git;
use crate::support::gpg;
use crate::support::upstream::{KEY_NAME, Package, Upstream, host_platform};
use crate::support::zoienv::{Sandbox, share};

const NO_RANGE: &str = r#"
location /pkgs/ {
    if (-f {site}/.norange) { rewrite ^/pkgs/(.*)$ /__norange/$1 last; }
}
location /__norange/ { internal; alias {site}/pkgs/; max_ranges 0; }
"#;

/// The filled mirror, and what restores it between rows.
struct World {
    up: Upstream,
    co: Company,
    signed: PathBuf,
    plain: PathBuf,
    pristine: PathBuf,
    heads: Vec<(String, String)>,
    mallory: String,
}

impl World {
    fn new() -> World {
        let up = Upstream::start();
        let co = Company::with_nginx(NO_RANGE);
        let spec = co.spec(&up, "");
        assert_eq!(co.db_sync(&spec).code, 0);
        let r = co.bin_sync(&spec, &[]);
        assert_eq!(r.code, 0, "{}", r.stdout);
        let (r, signed) = co.build(&spec);
        assert_eq!(r.code, 0, "{}", r.stderr);

        // A second registry on the same host, unsigned, for clients with
        // no authorities.
        crate::support::gitd::empty_bare(&co.git_root.join("plain.git"));
        let plain_spec = Spec::parse(&fs::read_to_string(&spec).unwrap())
            .set(
                "registry.url",
                co.gitd.as_ref().expect("git daemon").url("plain.git"),
            )
            .set("extension.name", "acme-plain")
            .remove("registry.authorities")
            .remove("registry.signing_key")
            .write_to(&co.sb.path().join("plain.toml"));
        assert_eq!(co.db_sync(&plain_spec).code, 0);
        // (build names the bundle dir after acme-mirror; this one is acme-plain)
        let (r, _) = co.build(&plain_spec);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let plain = co.site.join("acme-plain-1.0.0");

        let pristine = co.sb.path().join("pristine-pkgs");
        copy_tree(&co.site.join("pkgs"), &pristine);
        let heads = ["mirror.git", "plain.git"]
            .iter()
            .map(|r| {
                let bare = co.git_root.join(r);
                (r.to_string(), git(&bare, &["rev-parse", "refs/heads/main"]))
            })
            .collect();
        let mallory = gpg::add_key(&co.gnupg, "Mallory <m@evil.example>");
        World {
            up,
            co,
            signed,
            plain,
            pristine,
            heads,
            mallory,
        }
    }

    fn pkgs(&self) -> PathBuf {
        self.co.site.join("pkgs")
    }

    fn archive(&self, p: &Package) -> PathBuf {
        self.co.archive(p)
    }

    fn sidecar(&self, p: &Package, ext: &str) -> PathBuf {
        PathBuf::from(format!("{}.{ext}", self.archive(p).display()))
    }

    fn bare(&self) -> PathBuf {
        self.co.git_root.join("mirror.git")
    }

    /// Back to the filled state: the binary tree, the registries' refs and
    /// HEAD, Range support.
    fn restore(&self) {
        let pkgs = self.pkgs();
        fs::remove_dir_all(&pkgs).unwrap();
        copy_tree(&self.pristine, &pkgs);
        share(&pkgs);
        let _ = fs::remove_file(self.co.site.join(".norange"));
        for (repo, sha) in &self.heads {
            let bare = self.co.git_root.join(repo);
            git(&bare, &["update-ref", "refs/heads/main", sha]);
            git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
        }
    }

    /// A commit on top of the mirror's `main`, signed with `key` (or not),
    /// changing files with `edit` in a scratch clone.
    fn push_commit(&self, key: Option<&str>, edit: impl FnOnce(&Path)) {
        let tmp = self.co.sb.path().join("scratch");
        let _ = fs::remove_dir_all(&tmp);
        git(
            self.co.sb.path(),
            &[
                "clone",
                "-q",
                self.bare().to_str().unwrap(),
                tmp.to_str().unwrap(),
            ],
        );
        edit(&tmp);
        let mut args = vec![
            "-c",
            "gpg.program=gpg",
            "commit",
            "-q",
            "-a",
            "--allow-empty",
            "-m",
            "row",
        ];
        let sign;
        if let Some(k) = key {
            sign = format!("-S{k}");
            args.push(&sign);
        }
        let out = std::process::Command::new("git")
            .args(&args)
            .current_dir(&tmp)
            .env("GNUPGHOME", &self.co.gnupg)
            .env("GIT_AUTHOR_NAME", "x")
            .env("GIT_AUTHOR_EMAIL", "x@x")
            .env("GIT_COMMITTER_NAME", "x")
            .env("GIT_COMMITTER_EMAIL", "x@x")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        git(&tmp, &["push", "-q", "origin", "HEAD:main"]);
    }

    fn gpg_sign(&self, key: &str, file: &Path, out: &Path) {
        let r = std::process::Command::new("gpg")
            .args([
                "--batch",
                "--yes",
                "--detach-sign",
                "--local-user",
                key,
                "-o",
            ])
            .arg(out)
            .arg(file)
            .env("GNUPGHOME", &self.co.gnupg)
            .output()
            .unwrap();
        assert!(r.status.success());
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from)
        .into_iter()
        .filter_map(Result::ok)
    {
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dst).unwrap();
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}

const HTML: &str = "<!DOCTYPE html>\n<html><body><form>Please sign in</form></body></html>\n";

/// Rebuilds a `.zpa` with its embedded `manifest.sig` replaced by `sig`.
fn replace_embedded_sig(zpa: &Path, sig: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let raw = zstd::decode_all(fs::File::open(zpa).unwrap()).unwrap();
    let mut ar = tar::Archive::new(&raw[..]);
    let mut entries: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut manifest = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        if e.path().unwrap().ends_with("manifest.json") {
            manifest = data.clone();
        }
        entries.push((e.header().clone(), data));
    }
    let new_sig = sig(&manifest);
    let mut b = tar::Builder::new(Vec::new());
    for (mut h, data) in entries {
        let data = if h.path().unwrap().ends_with("manifest.sig") {
            h.set_size(new_sig.len() as u64);
            h.set_cksum();
            new_sig.clone()
        } else {
            data
        };
        b.append(&h, &data[..]).unwrap();
    }
    zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap()
}

/// Rewrites `.hash` and the `down:` line of `.size` for new archive bytes.
fn fix_metadata(w: &World, p: &Package, bytes: &[u8]) {
    let name = p.file_name(&host_platform());
    fs::write(
        w.sidecar(p, "hash"),
        format!("{}  {name}\n", crate::support::sha512_hex(bytes)),
    )
    .unwrap();
    let size = fs::read_to_string(w.sidecar(p, "size")).unwrap();
    let install = size.lines().nth(1).unwrap().to_string();
    fs::write(
        w.sidecar(p, "size"),
        format!("down: {}\n{install}\n", bytes.len()),
    )
    .unwrap();
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Signed,
    Plain,
}

/// An edit of the client's own files after apply.
type ClientEdit = Box<dyn Fn(&Sandbox)>;

struct Row {
    state: &'static str,
    bundle: Which,
    package: &'static str,
    /// The kind `check` must name when the row fails.
    kind: Option<&'static str>,
    /// The kind `check --client` must name, when the machine ends up in
    /// another state than the mirror (e.g. apply refused the bundle).
    client_kind: Option<&'static str>,
    /// Bundle mode cannot see the state (it lives in the client's config).
    client_only: bool,
    /// Only the bytes tell (a same-length change under a valid .hash):
    /// `check` without `--deep` cannot see it, by design.
    deep_only: bool,
    mutate: Box<dyn Fn(&World)>,
    /// Edits the client's config after apply (`repos` and the like).
    client_edit: Option<ClientEdit>,
}

fn row(
    state: &'static str,
    package: &'static str,
    kind: Option<&'static str>,
    mutate: impl Fn(&World) + 'static,
) -> Row {
    Row {
        state,
        bundle: Which::Signed,
        package,
        kind,
        client_kind: None,
        client_only: false,
        deep_only: false,
        mutate: Box::new(mutate),
        client_edit: None,
    }
}

fn rows() -> Vec<Row> {
    let sig = |w: &World| w.up.package("sigtool");
    let emb = |w: &World| w.up.package("embedtool");
    let mut v = vec![
        row(
            "healthy signed mirror (detached .sig)",
            "sigtool",
            None,
            |_| {},
        ),
        row(
            "healthy signed mirror (embedded manifest.sig)",
            "embedtool",
            None,
            |_| {},
        ),
        Row {
            bundle: Which::Plain,
            ..row(
                "healthy unsigned mirror, no authorities",
                "sigtool",
                None,
                |_| {},
            )
        },
        row(
            ".sig missing",
            "sigtool",
            Some("signature_missing"),
            move |w| {
                fs::remove_file(w.sidecar(sig(w), "sig")).unwrap();
            },
        ),
        row(
            ".sig by a key no client trusts",
            "sigtool",
            Some("signature_untrusted"),
            move |w| {
                let p = sig(w);
                w.gpg_sign(&w.mallory, &w.archive(p), &w.sidecar(p, "sig"));
            },
        ),
        row(
            ".sig an HTML page",
            "sigtool",
            Some("signature_bad"),
            move |w| {
                fs::write(w.sidecar(sig(w), "sig"), HTML).unwrap();
            },
        ),
        row(
            "embedded manifest.sig by a key no client trusts",
            "embedtool",
            Some("signature_untrusted"),
            move |w| {
                let p = emb(w);
                let tmp = w.co.sb.path().join("m.json");
                let bytes = replace_embedded_sig(&w.archive(p), |manifest| {
                    fs::write(&tmp, manifest).unwrap();
                    let out = tmp.with_extension("sig");
                    w.gpg_sign(&w.mallory, &tmp, &out);
                    fs::read(&out).unwrap()
                });
                fs::write(w.archive(p), &bytes).unwrap();
                fix_metadata(w, p, &bytes);
            },
        ),
        Row {
            deep_only: true,
            ..row(
                "archive bytes changed",
                "sigtool",
                Some("hash_mismatch"),
                move |w| {
                    let a = w.archive(sig(w));
                    let mut b = fs::read(&a).unwrap();
                    let n = b.len();
                    b[n / 2] ^= 0x20;
                    fs::write(&a, b).unwrap();
                },
            )
        },
        row(
            ".hash an HTML login page (200)",
            "sigtool",
            Some("html_instead_of_metadata"),
            move |w| {
                fs::write(w.sidecar(sig(w), "hash"), HTML).unwrap();
            },
        ),
        row(".hash 404", "sigtool", Some("not_found"), move |w| {
            fs::remove_file(w.sidecar(sig(w), "hash")).unwrap();
        }),
        row(
            ".size wrong (Zoi does not check it)",
            "sigtool",
            None,
            move |w| {
                let f = w.sidecar(sig(w), "size");
                let text = fs::read_to_string(&f).unwrap();
                let down: u64 = text.lines().next().unwrap()[6..].trim().parse().unwrap();
                fs::write(
                    &f,
                    text.replacen(&down.to_string(), &(down + 7).to_string(), 1),
                )
                .unwrap();
            },
        ),
        row(".size 404", "sigtool", None, move |w| {
            fs::remove_file(w.sidecar(sig(w), "size")).unwrap();
        }),
        row(
            ".files missing (Zoi falls back to the archive)",
            "sigtool",
            None,
            move |w| {
                fs::remove_file(w.sidecar(sig(w), "files")).unwrap();
            },
        ),
        row(".files an HTML page", "sigtool", None, move |w| {
            fs::write(w.sidecar(sig(w), "files"), HTML).unwrap();
        }),
        row("archive 404", "sigtool", Some("not_found"), move |w| {
            fs::remove_file(w.archive(sig(w))).unwrap();
        }),
        row(
            "archive served without Range support (a fresh download needs none)",
            "sigtool",
            None,
            |w| {
                fs::write(w.co.site.join(".norange"), "").unwrap();
            },
        ),
        // Zoi cannot import the key, so `zoi extension add` fails and apply
        // leaves the machine as it was: on Zoi's built-in registry, never
        // synced. `check --client` says so (and does not contact Zoi's
        // default registry on the user's behalf).
        Row {
            client_kind: Some("not_synced"),
            ..row("key URL 404", "sigtool", Some("key_unreachable"), |w| {
                fs::remove_file(w.pkgs().join(format!("keys/{KEY_NAME}.asc"))).unwrap();
            })
        },
        Row {
            client_kind: Some("not_synced"),
            ..row(
                "key URL an HTML page",
                "sigtool",
                Some("key_not_pgp"),
                |w| {
                    fs::write(w.pkgs().join(format!("keys/{KEY_NAME}.asc")), HTML).unwrap();
                },
            )
        },
        row(
            "registry HEAD names a missing branch",
            "sigtool",
            Some("head_missing"),
            |w| {
                git(&w.bare(), &["symbolic-ref", "HEAD", "refs/heads/master"]);
            },
        ),
        row(
            "overlay commit unsigned, clients with authorities",
            "sigtool",
            Some("registry_unsigned"),
            |w| {
                w.push_commit(None, |_| {});
            },
        ),
        row(
            "overlay signed by a key not among the authorities",
            "sigtool",
            Some("registry_unsigned"),
            |w| {
                let k = w.mallory.clone();
                w.push_commit(Some(&k), |_| {});
            },
        ),
        row(
            "package's .pkg.lua absent from the registry, archive on the host",
            "sigtool",
            Some("not_in_registry"),
            |w| {
                let fpr = w.co.fpr.clone();
                w.push_commit(Some(&fpr), |dir| {
                    fs::remove_dir_all(dir.join("main/sigtool")).unwrap();
                });
            },
        ),
        row(
            "package absent from packages.json only (Zoi resolves the .pkg.lua)",
            "sigtool",
            None,
            |w| {
                let fpr = w.co.fpr.clone();
                w.push_commit(Some(&fpr), |dir| {
                    let p = dir.join("packages.json");
                    let mut v: serde_json::Value =
                        serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
                    v["packages"]
                        .as_object_mut()
                        .unwrap()
                        .remove("@main/sigtool");
                    fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
                });
            },
        ),
        Row {
            client_only: true,
            client_edit: Some(Box::new(|sb: &Sandbox| {
                let path = sb.config();
                let mut c: serde_yaml::Value =
                    serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
                c["repos"].as_sequence_mut().unwrap().push("ghost".into());
                sb.write_home(
                    ".config/zoi/config.yaml",
                    serde_yaml::to_string(&c).unwrap().as_bytes(),
                );
            })),
            ..row(
                "`repos` lists a tier the registry lacks",
                "sigtool",
                None,
                |_| {},
            )
        },
    ];
    // Last: it takes the registry away for good.
    v.push(row(
        "registry URL unreachable",
        "sigtool",
        Some("connect_refused"),
        |_| {},
    ));
    v
}

struct Verdict {
    ok: bool,
    kinds: Vec<String>,
    note: String,
}

fn check_verdict(r: &crate::support::Run) -> Verdict {
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    let kinds: Vec<String> = doc["counts"]["by_kind"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_else(|| {
            doc["error"]["kind"]
                .as_str()
                .map(|k| vec![k.to_string()])
                .unwrap_or_default()
        });
    Verdict {
        ok: r.code == 0,
        note: format!("exit {} {}", r.code, kinds.join(",")),
        kinds,
    }
}

#[test]
fn differential_check_and_the_real_client_agree_on_every_mirror_state() {
    let mut w = World::new();
    let mut table = Vec::new();
    let mut disagreements = Vec::new();
    for (i, row) in rows().into_iter().enumerate() {
        w.restore();
        if row.state == "registry URL unreachable" {
            w.co.gitd = None;
        }
        (row.mutate)(&w);
        share(&w.co.site);
        let pkg = w.up.package(row.package);
        let pkg_ref = format!("{}@{}", pkg.query(), pkg.version);
        let bundle = match row.bundle {
            Which::Signed => &w.signed,
            Which::Plain => &w.plain,
        };

        let bundle_args = |deep: bool| {
            let mut a = vec![
                "check",
                "--bundle",
                bundle.to_str().unwrap(),
                "--package",
                &pkg_ref,
                "--format",
                "json",
            ];
            if deep {
                a.push("--deep");
            }
            check_verdict(&w.co.zm(&a))
        };
        let bundle_check = (!row.client_only).then(|| bundle_args(true));
        // Without --deep: signatures judged by issuer, the archive fetched
        // only to find an embedded manifest.sig where no .sig answers.
        let quick_check = (!row.client_only && !row.deep_only).then(|| bundle_args(false));

        // The real client on a fresh machine.
        let mut sb = Sandbox::new();
        sb.fresh_home(&format!("home-{i}"));
        let apply = sb.sh(&format!("zoi-mirror apply {}", bundle.display()));
        if let Some(edit) = &row.client_edit {
            edit(&sb);
        }
        let sync = sb.sh("zoi sync");
        let install = sb.sh(&format!("zoi install -y {}", pkg.query()));
        let ran = install.code == 0
            && sb
                .sh(&format!("$HOME/.local/bin/{}", pkg.name))
                .stdout
                .trim()
                == pkg.output();
        let zoi_ok = apply.code == 0 && sync.code == 0 && ran;
        let last = [&apply, &sync, &install]
            .into_iter()
            .find(|r| r.code != 0)
            .map(|r| {
                format!("{}{}", r.stdout, r.stderr)
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .chars()
                    .take(90)
                    .collect::<String>()
            })
            .unwrap_or_default();

        let client_check = check_verdict(&sb.sh(&format!(
            "zoi-mirror check --client --package {pkg_ref} --deep --format json"
        )));

        let mut bad = Vec::new();
        for (mode, v) in [
            ("bundle", bundle_check.as_ref()),
            ("bundle without --deep", quick_check.as_ref()),
            ("client", Some(&client_check)),
        ] {
            let Some(v) = v else { continue };
            if v.ok != zoi_ok {
                bad.push(format!(
                    "{mode}: check says {}, zoi {}",
                    v.note,
                    if zoi_ok { "ok" } else { "fails" }
                ));
            } else if !v.ok
                && let Some(k) = (if mode == "client" {
                    row.client_kind.or(row.kind)
                } else {
                    row.kind
                })
                && !v.kinds.iter().any(|x| x == k)
            {
                bad.push(format!("{mode}: expected kind {k}, check says {}", v.note));
            }
        }
        table.push(format!(
            "{:<66} {:<34} {:<34} {:<6} {}",
            row.state,
            bundle_check
                .as_ref()
                .map_or("n/a (client config)".to_string(), |v| v.note.clone()),
            client_check.note,
            if zoi_ok { "ok" } else { "FAILS" },
            last
        ));
        if !bad.is_empty() {
            disagreements.push(format!("{}: {}", row.state, bad.join("; ")));
        }
    }
    eprintln!(
        "\n{:<66} {:<34} {:<34} {:<6} zoi's last words\n{}",
        "mirror state",
        "check --bundle",
        "check --client",
        "zoi",
        table.join("\n")
    );
    assert!(table.len() >= 20);
    assert!(
        disagreements.is_empty(),
        "check and the real client disagree:\n{}",
        disagreements.join("\n")
    );
}
