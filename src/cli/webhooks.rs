//! `baton webhook …`: create, list, describe and delete inbound webhook
//! sources, read a source's delivery log and replay a delivery, through the
//! REST API.

use anyhow::{bail, Context as _};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{enc, json_arg, Conn};
use super::output::{print, print_fields};
use super::Output;

#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Create a source: a public URL whose deliveries are verified and routed.
    Create {
        source_id: String,
        /// stripe, github, standard_webhooks, slack, shopify, or a JSON
        /// object for a generic HMAC ('{"type":"hmac","header":…}').
        #[arg(long)]
        scheme: String,
        /// A signing secret (repeat while rotating one).
        #[arg(long = "secret", required = true)]
        secrets: Vec<String>,
        /// The routing rules as a JSON array, or @FILE to read them from a file.
        #[arg(long)]
        rules: Option<String>,
        /// How far a signed timestamp may be from now, in seconds (default 300).
        #[arg(long)]
        tolerance_seconds: Option<i64>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the namespace's sources.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a source and its rules (never its secrets).
    Describe {
        source_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a source and its delivery log.
    Delete {
        source_id: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// A source's deliveries, newest first.
    Deliveries {
        source_id: String,
        /// Most deliveries to show.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        conn: Conn,
    },
    /// Route a logged delivery again (idempotent: the same request id).
    Replay {
        source_id: String,
        delivery: String,
        #[command(flatten)]
        conn: Conn,
    },
}

const DELIVERY_FIELDS: &[(&str, &str)] = &[
    ("Delivery", "/delivery"),
    ("ReceivedAt", "/received_at"),
    ("DeliveryId", "/delivery_id"),
    ("Outcome", "/outcome"),
    ("Rule", "/rule"),
    ("Action", "/action"),
    ("WorkflowId", "/workflow_id"),
    ("RunId", "/run_id"),
    ("Error", "/error"),
    ("ReplayOf", "/replay_of"),
];

pub async fn webhook(cmd: WebhookCmd) -> anyhow::Result<()> {
    match cmd {
        WebhookCmd::Create {
            source_id,
            scheme,
            secrets,
            rules,
            tolerance_seconds,
            description,
            conn,
        } => {
            let scheme = if scheme.trim_start().starts_with('{') {
                json_arg(Some(&scheme), "--scheme")?
            } else {
                json!({"type": scheme})
            };
            let rules = match rules.as_deref() {
                None => json!([]),
                Some(r) => match r.strip_prefix('@') {
                    Some(file) => {
                        let text = std::fs::read_to_string(file)
                            .with_context(|| format!("reading --rules {file}"))?;
                        json_arg(Some(&text), "--rules")?
                    }
                    None => json_arg(Some(r), "--rules")?,
                },
            };
            let body = json!({
                "source_id": source_id,
                "scheme": scheme,
                "secrets": secrets,
                "rules": rules,
                "tolerance_seconds": tolerance_seconds,
                "description": description,
            });
            let v = conn
                .call(Method::POST, &conn.ns_path("/webhooks"), Some(body))
                .await?;
            describe(conn.output, &v);
        }
        WebhookCmd::List { conn } => {
            let v = conn
                .call(Method::GET, &conn.ns_path("/webhooks"), None)
                .await?;
            print(
                conn.output,
                &v,
                Some("/sources"),
                &[
                    ("SOURCE ID", "/source_id"),
                    ("SCHEME", "/scheme/type"),
                    ("SECRETS", "/secret_count"),
                    ("URL", "/url"),
                    ("CREATED", "/created_at"),
                ],
            );
        }
        WebhookCmd::Describe { source_id, conn } => {
            let path = conn.ns_path(&format!("/webhooks/{}", enc(&source_id)));
            let v = conn.call(Method::GET, &path, None).await?;
            describe(conn.output, &v);
        }
        WebhookCmd::Delete { source_id, conn } => {
            let path = conn.ns_path(&format!("/webhooks/{}", enc(&source_id)));
            conn.call(Method::DELETE, &path, None).await?;
            if matches!(conn.output, Output::Table) {
                println!("deleted webhook source {source_id}");
            }
        }
        WebhookCmd::Deliveries {
            source_id,
            limit,
            conn,
        } => {
            if !(1..=1000).contains(&limit) {
                bail!("--limit {limit} is not within 1..=1000");
            }
            let path = conn.ns_path(&format!(
                "/webhooks/{}/deliveries?page_size={limit}",
                enc(&source_id)
            ));
            let v = conn.call(Method::GET, &path, None).await?;
            print(
                conn.output,
                &v,
                Some("/deliveries"),
                &[
                    ("DELIVERY", "/delivery"),
                    ("RECEIVED", "/received_at"),
                    ("OUTCOME", "/outcome"),
                    ("RULE", "/rule"),
                    ("ACTION", "/action"),
                    ("WORKFLOW ID", "/workflow_id"),
                    ("ERROR", "/error"),
                ],
            );
        }
        WebhookCmd::Replay {
            source_id,
            delivery,
            conn,
        } => {
            let path = conn.ns_path(&format!(
                "/webhooks/{}/deliveries/{}/replay",
                enc(&source_id),
                enc(&delivery)
            ));
            let v = conn.call(Method::POST, &path, None).await?;
            print_fields(conn.output, &v, DELIVERY_FIELDS);
        }
    }
    Ok(())
}

fn describe(output: Output, v: &Value) {
    print_fields(
        output,
        v,
        &[
            ("SourceId", "/source_id"),
            ("Scheme", "/scheme/type"),
            ("Secrets", "/secret_count"),
            ("Tolerance", "/tolerance_seconds"),
            ("Url", "/url"),
            ("Description", "/description"),
            ("CreatedAt", "/created_at"),
        ],
    );
    if matches!(output, Output::Table) {
        for rule in v["rules"].as_array().into_iter().flatten() {
            println!(
                "rule {}: {} {}",
                rule["name"].as_str().unwrap_or_default(),
                rule["action"]["type"].as_str().unwrap_or_default(),
                rule["action"]["workflow_id"].as_str().unwrap_or_default()
            );
        }
    }
}
