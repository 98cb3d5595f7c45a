//! Loopback ports for the servers the tests start (nginx, git daemon,
//! SeaweedFS): pick a free one, wait until the server listens on it.

use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

/// A port nothing listens on right now (the kernel's pick). Another
/// process may take it before the server binds it: callers retry.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something accepts connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Waits up to `timeout` for `child` to listen on `port`: true once it
/// does, false when it exited first (most likely the port was taken) or
/// the time ran out.
pub fn wait_port(port: u16, child: &mut Child, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if port_open(port) {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
