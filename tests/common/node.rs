//! `baton serve` as a child process of a test, on a free loopback port,
//! for the tests that kill nodes or databases under it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::Api;

/// A `baton serve` child process.
pub struct Node {
    pub child: Child,
    pub api: Api,
}

impl Node {
    pub async fn start(database_url: &str, port: u16) -> Node {
        let child = Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(["serve", "--database-url", database_url, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--poll-interval-ms", "200"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn baton serve");
        let api = Api::new(format!("http://127.0.0.1:{port}"), None);
        let ready = super::eventually(Duration::from_secs(30), || {
            let api = api.clone();
            async move {
                reqwest::get(format!("{}/readyz", api.base))
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await;
        assert!(ready, "baton serve did not become ready on port {port}");
        Node { child, api }
    }

    pub fn kill(mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
