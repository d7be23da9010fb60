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
        let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
        command
            .args(["serve", "--database-url", database_url, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--poll-interval-ms", "200"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Node::spawn(command, port).await
    }

    /// Runs `command` (a `baton serve` or `dev` listening on `port`) and
    /// waits until the node is ready.
    pub async fn spawn(mut command: Command, port: u16) -> Node {
        let child = command.spawn().expect("spawn baton");
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
        assert!(ready, "baton did not become ready on port {port}");
        Node { child, api }
    }

    /// SIGTERM, then waits for the process to exit: its exit status and
    /// how long it took.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let begun = std::time::Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for baton serve") {
                return (status, begun.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
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
