//! `baton apikey create|list|revoke`: namespace-scoped API keys with a
//! role (admin only; `--api-key` must be an admin's). The key is printed
//! once, at creation; the server keeps only its hash.

use clap::Subcommand;
use reqwest::Method;
use serde_json::json;

use super::client::{enc, Conn};
use super::output::{print, print_fields};
use super::Output;

#[derive(Subcommand)]
pub enum ApiKeyCmd {
    /// Create a key for `--namespace` with a role, and print it once.
    ///
    /// A reader lists, describes, counts and queries runs and reads
    /// histories, schedules, batches and endpoints; a writer also starts,
    /// signals, updates, cancels, terminates, resets and deletes runs and
    /// manages schedules, batches, endpoints and activity completions; an
    /// admin may do everything, in every namespace (`--namespace` is not
    /// used), including namespaces, search attributes and keys.
    Create {
        /// admin, writer or reader.
        #[arg(long)]
        role: String,
        /// How long the key is valid, e.g. 90d or 12h (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List keys (ids, scopes, expiry, last use; never the keys).
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a key by its id: every node refuses it within a second.
    Revoke {
        /// The key's id (`bk_…`, the part before the dot).
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

const COLUMNS: [(&str, &str); 7] = [
    ("ID", "/id"),
    ("NAMESPACE", "/namespace"),
    ("ROLE", "/role"),
    ("EXPIRES", "/expires_at"),
    ("REVOKED", "/revoked_at"),
    ("LAST USED", "/last_used_at"),
    ("DESCRIPTION", "/description"),
];

pub async fn apikey(cmd: ApiKeyCmd) -> anyhow::Result<()> {
    match cmd {
        ApiKeyCmd::Create {
            role,
            expires,
            description,
            conn,
        } => {
            let mut body = json!({ "role": role, "description": description });
            if role != "admin" {
                body["namespace"] = json!(conn.namespace());
            }
            if let Some(e) = expires {
                body["expires_in"] = json!(e);
            }
            let v = conn
                .call(Method::POST, "/api/v1/apikeys", Some(body))
                .await?;
            print_fields(
                conn.output,
                &v,
                &[
                    ("id", "/id"),
                    ("namespace", "/namespace"),
                    ("role", "/role"),
                    ("expires_at", "/expires_at"),
                    ("key", "/key"),
                ],
            );
            if matches!(conn.output, Output::Table) {
                println!("\nThe key is shown only this once; store it now.");
            }
        }
        ApiKeyCmd::List { conn } => {
            let v = conn.call(Method::GET, "/api/v1/apikeys", None).await?;
            print(conn.output, &v, Some("/api_keys"), &COLUMNS);
        }
        ApiKeyCmd::Revoke { id, conn } => {
            let path = format!("/api/v1/apikeys/{}", enc(&id));
            conn.call(Method::DELETE, &path, None).await?;
            if matches!(conn.output, Output::Table) {
                println!("revoked API key {id}");
            }
        }
    }
    Ok(())
}
