//! The Ansible example: the commands the playbook runs, run the way it runs
//! them, with its `changed_when` logic applied to their JSON.

use std::path::Path;

use serde_yaml::Value;

use crate::support::serve::Serve;
use crate::support::{self, run, zm};

fn playbook() -> Value {
    let text = std::fs::read_to_string(support::repo_root().join("examples/ansible/playbook.yml"))
        .unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn task<'a>(pb: &'a Value, name_starts: &str) -> &'a Value {
    pb[0]["tasks"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str().unwrap().starts_with(name_starts))
        .unwrap_or_else(|| panic!("no task {name_starts}"))
}

/// The playbook's Jinja for these simple variables.
fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{ {k} }}}}"), v);
    }
    assert!(!out.contains("{{"), "unrendered: {out}");
    out
}

fn sh(home: &Path, line: &str) -> support::Run {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(line)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .current_dir(home);
    run(&mut c)
}

#[test]
fn the_playbook_commands_apply_idempotently_and_report_drift() {
    let pb = playbook();
    let apply = task(&pb, "Apply the bundle");
    let status = task(&pb, "Report drift");
    let install = task(&pb, "Install zoi-mirror");
    // the logic this test replicates is the playbook's
    assert_eq!(
        apply["changed_when"].as_str().unwrap(),
        "(apply.stdout | from_json).changed and not (apply.stdout | from_json).already_applied"
    );
    assert_eq!(
        status["changed_when"].as_str().unwrap(),
        "not (status.stdout | from_json).in_sync"
    );
    assert_eq!(
        status["check_mode"],
        Value::Bool(false),
        "status must run under --check"
    );
    assert_eq!(apply["when"].as_str().unwrap(), "not ansible_check_mode");

    // publish a bundle with our binary as the tool, over `serve`
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let site = h.join("site");
    std::fs::create_dir_all(&site).unwrap();
    let srv = Serve::start(h, &site, &["--quiet"]);
    let spec = std::fs::read_to_string(support::example_spec()).unwrap();
    std::fs::write(h.join("mirror.toml"), spec).unwrap();
    // the install task is not run here, so any file stands in for the tool
    std::fs::write(h.join("zoi-mirror-linux-amd64"), b"\x7fELF stand-in").unwrap();
    let tool = format!("linux-amd64={}", h.join("zoi-mirror-linux-amd64").display());
    zm(
        h,
        &[
            "build",
            "-c",
            "mirror.toml",
            "-o",
            site.to_str().unwrap(),
            "--tool",
            &tool,
        ],
    )
    .ok();
    let bundle_url = format!("{}acme-mirror-1.2.0/", srv.url);
    let sha = support::sha512_file(&site.join("acme-mirror-1.2.0/bundle.json"));

    // the install task's checksum expression points at a real bundle.json entry
    let checksum = install["ansible.builtin.get_url"]["checksum"]
        .as_str()
        .unwrap();
    assert!(
        checksum.contains(".files['tools/' + platform + '/zoi-mirror'].sha512"),
        "{checksum}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(site.join("acme-mirror-1.2.0/bundle.json")).unwrap())
            .unwrap();
    assert!(manifest["files"]["tools/linux-amd64/zoi-mirror"]["sha512"].is_string());

    let zoi_mirror = support::bin().display().to_string();
    let vars = [
        ("zoi_mirror", zoi_mirror.as_str()),
        ("bundle_url", bundle_url.as_str()),
        ("bundle_sha512", sha.as_str()),
        ("scope", "user"),
    ];
    let apply_cmd = render(apply["ansible.builtin.command"].as_str().unwrap(), &vars);
    let status_cmd = render(status["ansible.builtin.command"].as_str().unwrap(), &vars);
    let changed = |r: &support::Run| {
        let d = r.json();
        d["changed"].as_bool().unwrap() && !d["already_applied"].as_bool().unwrap()
    };

    // --check before anything: status runs and reports drift (changed)
    let r = sh(h, &status_cmd);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.json()["in_sync"].as_bool().unwrap());

    let r = sh(h, &apply_cmd);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(changed(&r), "first run: changed");
    let r = sh(h, &apply_cmd);
    assert_eq!(r.code, 0);
    assert!(!changed(&r), "second run: ok");

    let r = sh(h, &status_cmd);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.json()["in_sync"].as_bool().unwrap(), "status: ok");
}
