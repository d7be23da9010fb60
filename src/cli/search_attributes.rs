//! `baton namespace search-attribute add|list|remove`: the namespace's
//! registry of custom search attributes (Temporal's `operator
//! search-attribute create|list|remove`), and the search attributes table
//! of `baton workflow describe`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{enc, Conn};
use super::output::print;
use super::Output;

#[derive(Subcommand)]
pub enum SearchAttributeCmd {
    /// Register a custom search attribute.
    Add {
        #[arg(long)]
        name: String,
        /// Keyword, Text, Int, Double, Bool, Datetime or KeywordList.
        #[arg(long = "type")]
        kind: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the system and custom search attributes.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Remove a custom search attribute: runs keep their values, which are
    /// no longer queryable.
    Remove {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

pub async fn search_attribute(cmd: SearchAttributeCmd) -> anyhow::Result<()> {
    match cmd {
        SearchAttributeCmd::Add { name, kind, conn } => {
            let body = json!({ "search_attributes": { name.clone(): kind } });
            let v = conn
                .call(
                    Method::POST,
                    &conn.ns_path("/search-attributes"),
                    Some(body),
                )
                .await?;
            print_list(conn.output, &v);
        }
        SearchAttributeCmd::List { conn } => {
            let v = conn
                .call(Method::GET, &conn.ns_path("/search-attributes"), None)
                .await?;
            print_list(conn.output, &v);
        }
        SearchAttributeCmd::Remove { name, conn } => {
            let path = conn.ns_path(&format!("/search-attributes/{}", enc(&name)));
            conn.call(Method::DELETE, &path, None).await?;
            if matches!(conn.output, Output::Table) {
                println!("removed search attribute {name}");
            }
        }
    }
    Ok(())
}

/// The registry as one table: custom attributes first.
fn print_list(output: Output, v: &Value) {
    if matches!(output, Output::Json) {
        print(output, v, None, &[]);
        return;
    }
    let mut rows = Vec::new();
    for (pointer, kind) in [
        ("/custom_attributes", "custom"),
        ("/system_attributes", "system"),
    ] {
        if let Some(map) = v.pointer(pointer).and_then(Value::as_object) {
            for (name, ty) in map {
                rows.push(json!({ "name": name, "type": ty, "kind": kind }));
            }
        }
    }
    let table = json!({ "rows": rows });
    print(
        output,
        &table,
        Some("/rows"),
        &[("NAME", "/name"), ("TYPE", "/type"), ("KIND", "/kind")],
    );
}

/// Describe's search attributes as a titled table (tables only).
pub fn print_described(v: &Value) {
    let Some(map) = v
        .pointer("/search_attributes")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
    else {
        return;
    };
    let rows: Vec<Value> = map
        .iter()
        .map(|(name, typed)| {
            json!({ "name": name, "type": typed.get("type"), "value": typed.get("value") })
        })
        .collect();
    println!("\nSearch attributes:");
    print(
        Output::Table,
        &json!({ "rows": rows }),
        Some("/rows"),
        &[("NAME", "/name"), ("TYPE", "/type"), ("VALUE", "/value")],
    );
}
