//! `baton health`: probes a node's `/healthz` (or `/readyz`) and exits 0
//! when it answers 200. It is the container `HEALTHCHECK` of the image in
//! `deploy/docker/`, whose distroless base has no shell and no curl.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

#[derive(Args)]
pub struct HealthArgs {
    /// Node address.
    #[arg(long, env = "BATON_ADDRESS", default_value = "http://127.0.0.1:7233")]
    address: String,
    /// Probe `/readyz` (the node can commit) instead of `/healthz` (the
    /// process answers).
    #[arg(long)]
    ready: bool,
    /// Give up after this long, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub async fn health(args: HealthArgs) -> anyhow::Result<()> {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    let url = format!("{}{path}", args.address.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .get(&url)
        .timeout(args.timeout)
        .send()
        .await
        .with_context(|| format!("cannot reach the Baton server at {}", args.address))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("{url} answered {}", status.as_u16());
    }
    println!("{url} answered {}", status.as_u16());
    Ok(())
}
