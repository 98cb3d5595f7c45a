//! A real nginx on loopback, started by the test that needs it, serving a
//! directory the test controls. Stopped (and its files removed) on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::net::{free_port, wait_port};

pub struct Nginx {
    pub port: u16,
    pub root: PathBuf,
    /// `https` when started with a certificate, else `http`.
    scheme: &'static str,
    child: Child,
    _dir: tempfile::TempDir,
}

fn nginx_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ZOI_MIRROR_NGINX") {
        return p.into();
    }
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("nginx not found: install nginx-light (scripts/test.sh does) or set ZOI_MIRROR_NGINX")
}

impl Nginx {
    /// Serves `root` (read-only, no listings) with `extra` appended inside
    /// the `server` block.
    pub fn start_with(root: &Path, extra: &str) -> Nginx {
        Nginx::start_inner(root, extra, None)
    }

    /// Serves `root` over HTTPS only, with the server certificate of `ca`
    /// (for 127.0.0.1): clients trust it only when given `ca.ca_pem`.
    pub fn start_tls(root: &Path, ca: &super::faults::TestCa) -> Nginx {
        Nginx::start_inner(root, "", Some((&ca.server_cert_pem, &ca.server_key_pem)))
    }

    fn start_inner(root: &Path, extra: &str, tls: Option<(&str, &str)>) -> Nginx {
        for _attempt in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let d = dir.path().display();
            let ssl = match tls {
                None => String::new(),
                Some((cert, key)) => {
                    std::fs::write(dir.path().join("server.crt"), cert).unwrap();
                    std::fs::write(dir.path().join("server.key"), key).unwrap();
                    format!(
                        " ssl;\n        ssl_certificate {d}/server.crt;\n        ssl_certificate_key {d}/server.key"
                    )
                }
            };
            // Workers switch to `nobody` when started by root, and could not
            // read the test's private temp dirs.
            let user = if nix::unistd::geteuid().is_root() {
                "user root root;"
            } else {
                ""
            };
            let conf = format!(
                r#"{user}
worker_processes 1;
daemon off;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{
        text/plain hash size files txt;
        application/json json;
        text/yaml yaml;
        application/zstd zpa zst;
        text/x-lua lua;
    }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port}{ssl};
        root {root};
        autoindex off;
        {extra}
    }}
}}
"#,
                root = root.display()
            );
            std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
            let mut child = Command::new(nginx_bin())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .expect("start nginx");
            if wait_port(port, &mut child, Duration::from_secs(10)) {
                return Nginx {
                    port,
                    root: root.to_path_buf(),
                    scheme: if tls.is_some() { "https" } else { "http" },
                    child,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nginx did not start")
    }

    pub fn start(root: &Path) -> Nginx {
        Nginx::start_with(root, "")
    }

    /// nginx's access log so far (one line per request).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("access.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://127.0.0.1:{}/{}",
            self.scheme,
            self.port,
            path.trim_start_matches('/')
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // The master and its workers share a process group.
        super::stop_group(&mut self.child);
    }
}
