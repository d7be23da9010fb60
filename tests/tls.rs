//! TLS: a CA and certificates made here with rcgen (no committed keys).
//! A `baton dev --tls-cert/--tls-key` answers the CLI (`--ca-cert`,
//! `BATON_CA_CERT`) and many concurrent REST calls over `https://`, and
//! refuses clients that do not trust its CA; pushes to an `https://`
//! handler on loopback succeed with `--push-ca-file` and fail with a clear
//! certificate error without it; a PostgreSQL URL with
//! `sslmode=verify-full&sslrootcert=…` connects over TLS.
// Helpers here are test code too: a failed unwrap is a failed assertion.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::node::free_port;
use common::{sequential_workflow, spawn_server_with, test_options};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use serde_json::{json, Value};
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tower::ServiceExt as _;

/// A test CA and a `localhost` / `127.0.0.1` certificate it signed, as
/// PEM files in a temporary directory.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Baton test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    Pki {
        ca: path("ca.pem"),
        cert: path("cert.pem"),
        key: path("key.pem"),
        _dir: dir,
    }
}

fn trusting(ca: &PathBuf) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

/// A `baton dev --tls-cert/--tls-key` child process, killed on drop.
struct TlsNode {
    child: std::process::Child,
    base: String,
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn tls_node(pki: &Pki) -> TlsNode {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["dev", "--db", ":memory:", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let http = trusting(&pki.ca);
    let ready = common::eventually(Duration::from_secs(30), || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    assert!(ready, "the TLS node did not become ready");
    TlsNode { child, base }
}

fn cli(args: &[&str], envs: &[(&str, &PathBuf)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command.args(args).env_remove("BATON_CA_CERT");
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_rest_clients_talk_to_a_tls_node() {
    let pki = pki();
    let node = tls_node(&pki).await;
    for address in [
        node.base.clone(),
        node.base.replace("localhost", "127.0.0.1"),
    ] {
        let ca = pki.ca.to_str().unwrap();
        let out = cli(
            &["namespace", "list", "--address", &address, "--ca-cert", ca],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{address}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("default"), "{stdout}");
    }
    // The CA from the environment.
    let out = cli(
        &["namespace", "list", "--address", &node.base],
        &[("BATON_CA_CERT", &pki.ca)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without the CA the server is not trusted: a message and exit 1.
    let out = cli(&["namespace", "list", "--address", &node.base], &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot reach the Baton server"), "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    // A CA file that is not one.
    let out = cli(
        &[
            "namespace",
            "list",
            "--address",
            &node.base,
            "--ca-cert",
            pki.key.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--ca-cert"), "{stderr}");

    // Many calls at once over TLS.
    let http = trusting(&pki.ca);
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let (http, base) = (http.clone(), node.base.clone());
            tokio::spawn(async move {
                http.post(format!(
                    "{base}/api/v1/namespaces/default/workflows/tls-{i}"
                ))
                .json(&json!({"workflow_type": "W", "task_queue": "q", "input": {}}))
                .send()
                .await
                .unwrap()
                .status()
            })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), reqwest::StatusCode::CREATED);
    }
    let (status, body) = {
        let r = http
            .get(format!(
                "{}/api/v1/namespaces/default/workflow-count",
                node.base
            ))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(body["count"], 50, "{body}");
    // A plain-HTTP request to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("{}/readyz", node.base.replace("https", "http")))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn tls_flags_are_checked_at_start() {
    let pki = pki();
    // The certificate without its key.
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["dev", "--db", ":memory:", "--tls-cert"])
        .arg(&pki.cert)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
    // A key file in place of the certificate.
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["dev", "--db", ":memory:", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&pki.key)
        .arg("--tls-key")
        .arg(&pki.key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no certificate"), "{stderr}");
    // A push CA file that does not exist.
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["dev", "--db", ":memory:", "--listen", "127.0.0.1:0"])
        .args(["--push-ca-file", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
}

/// A handler on `https://localhost:<port>/` with the test certificate;
/// it completes every workflow at once.
async fn https_handler(pki: &Pki) -> String {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = Router::new().route(
        "/",
        post(|axum::Json(req): axum::Json<Value>| async move {
            (StatusCode::OK, axum::Json(sequential_workflow(&req, &[])))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| app.clone().oneshot(req),
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_verify_the_handlers_certificate() {
    let pki = pki();
    let url = https_handler(&pki).await;

    // Trusting the test CA: the pushes go through.
    let mut options = test_options("sqlite::memory:".to_owned());
    options.tls.push_ca_file = Some(pki.ca.clone());
    let trusted = spawn_server_with(options).await;
    trusted.api.register("secure", &url).await;
    let ids: Vec<String> = (0..20).map(|i| format!("secure-{i}")).collect();
    for id in &ids {
        let (status, body) = trusted.api.start(id, "W", "secure", json!({})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for id in &ids {
        assert_eq!(trusted.api.result(id).await["status"], "COMPLETED", "{id}");
    }
    trusted.stop().await;

    // Not trusting it: the push fails on the certificate, and says so.
    let untrusting = spawn_server_with(test_options("sqlite::memory:".to_owned())).await;
    untrusting.api.register("secure", &url).await;
    let (status, body) = untrusting
        .api
        .start("insecure", "W", "secure", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let api = untrusting.api.clone();
    let failed = common::eventually(Duration::from_secs(20), || {
        let api = api.clone();
        async move {
            let d = api.describe("insecure").await;
            d["pending_workflow_task"]["last_failure"]
                .as_str()
                .is_some_and(|f| f.to_lowercase().contains("certificate"))
        }
    })
    .await;
    let described = api.describe("insecure").await;
    assert!(failed, "no certificate error in {described:#}");
    assert_eq!(described["execution"]["status"], "RUNNING");
    untrusting.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_urls_verify_the_servers_certificate() {
    use sqlx::Connection as _;
    let url = common::fresh_postgres_database().await;
    // The server's certificate (Debian's, for `localhost`) is its CA.
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let (ssl, cert_file): (String, String) =
        sqlx::query_as("select current_setting('ssl'), current_setting('ssl_cert_file')")
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert_eq!(ssl, "on", "the test PostgreSQL serves no TLS");
    let mut verified = reqwest::Url::parse(&url).unwrap();
    verified.set_host(Some("localhost")).unwrap();
    let with_root = |root: &str| {
        let mut u = verified.clone();
        u.set_query(Some(&format!("sslmode=verify-full&sslrootcert={root}")));
        u.to_string()
    };
    let good = with_root(&cert_file);
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["migrate", "--database-url", &good])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = sqlx::PgConnection::connect(&good).await.unwrap();
    let (over_tls,): (bool,) =
        sqlx::query_as("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(over_tls);
    // A CA that did not sign the server's certificate: refused.
    let pki = pki();
    let out = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args([
            "migrate",
            "--database-url",
            &with_root(pki.ca.to_str().unwrap()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("opening database"), "{stderr}");
}
