//! TLS material of a node, read once at start: the API listener's
//! certificate chain and key (`--tls-cert` / `--tls-key`, PEM) as a rustls
//! acceptor, and the extra CAs pushes to `https://` endpoints trust
//! (`--push-ca-file`, a PEM bundle) besides the built-in web roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// Where a node's TLS files are; everything off by default.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// The API's certificate chain and private key (PEM files).
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
    /// Extra CAs (a PEM bundle) that pushes to `https://` endpoints trust.
    pub push_ca_file: Option<PathBuf>,
}

/// The listener's acceptor, if the API is served over TLS.
pub(super) fn acceptor(options: &TlsOptions) -> anyhow::Result<Option<TlsAcceptor>> {
    let Some((cert, key)) = &options.cert_and_key else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate chain in {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("--tls-cert {}: no certificate in the file", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("--tls-cert and --tls-key do not make a usable certificate")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// The extra push CAs, if any.
pub(super) fn push_roots(options: &TlsOptions) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let Some(path) = &options.push_ca_file else {
        return Ok(Vec::new());
    };
    let pem = read(path)?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("--push-ca-file {}: not a PEM bundle", path.display()))?;
    if roots.is_empty() {
        anyhow::bail!(
            "--push-ca-file {}: no certificate in the file",
            path.display()
        );
    }
    Ok(roots)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
