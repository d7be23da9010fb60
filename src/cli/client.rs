//! Client verbs: each builds one REST request, prints the answer, and turns
//! a problem response into a one-line error.

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use super::output::{print, print_fields, print_sections};
use super::Output;

/// Where and as whom to connect, shared by every client verb.
#[derive(Args, Clone)]
pub struct Conn {
    /// Server address.
    #[arg(
        long,
        env = "BATON_ADDRESS",
        default_value = "http://127.0.0.1:7233",
        global = true
    )]
    address: String,
    #[arg(
        long,
        short = 'n',
        env = "BATON_NAMESPACE",
        default_value = "default",
        global = true
    )]
    namespace: String,
    #[arg(long, env = "BATON_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
    /// A CA certificate (PEM bundle) to trust for an `https://` address,
    /// besides the built-in web roots.
    #[arg(long, env = "BATON_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub(super) output: Output,
}

/// `--query` (and its job's options) on `workflow terminate|cancel`.
#[derive(Args)]
pub struct ByQuery {
    /// Operate on every run this list filter matches, as a batch job.
    #[arg(long)]
    query: Option<String>,
    /// Runs per second of the batch job (default 50).
    #[arg(long, requires = "query")]
    rps: Option<f64>,
    /// Start the batch job without asking for confirmation.
    #[arg(long, short = 'y', requires = "query")]
    yes: bool,
}

impl ByQuery {
    async fn start(self, conn: &Conn, operation: &str, reason: String) -> anyhow::Result<()> {
        let body = json!({
            "query": self.query,
            "operation": operation,
            "reason": reason,
            "rps": self.rps,
        });
        super::batches::start_job(conn, body, self.yes).await
    }
}

#[derive(Subcommand)]
pub enum NamespaceCmd {
    /// Create a namespace.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// How long closed runs are kept, e.g. 30d or 72h (default 30 days).
        #[arg(long)]
        retention: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Change a namespace's description or retention.
    Update {
        name: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        retention: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List namespaces.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one namespace.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// The namespace's custom search attributes (`--namespace` names it).
    #[command(subcommand)]
    SearchAttribute(super::search_attributes::SearchAttributeCmd),
}

#[derive(Subcommand)]
pub enum EndpointCmd {
    /// Bind a handler URL to a task queue (the new version becomes current).
    Register {
        #[arg(long)]
        task_queue: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        version: Option<String>,
        /// `whsec_…` signing secret; repeat during rotation. One is generated if omitted.
        #[arg(long = "secret")]
        secrets: Vec<String>,
        #[arg(long)]
        max_concurrency: Option<u32>,
        /// Pushes per second to this version across all nodes.
        #[arg(long)]
        rate_limit: Option<f64>,
        /// The rate limit's burst (default: the rate rounded up).
        #[arg(long, requires = "rate_limit")]
        rate_burst: Option<u32>,
        /// `LIMIT:TEMPLATE`, e.g. `1:customer_id={input/0/customer_id}`: at
        /// most LIMIT tasks of runs whose template evaluates alike in
        /// flight at once; repeatable.
        #[arg(long = "concurrency-key", value_parser = concurrency_key)]
        concurrency_keys: Vec<Value>,
        /// Register no input schemas, whatever the handler's description
        /// publishes.
        #[arg(long)]
        no_schemas: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a version's input schemas, or replace them with `--set FILE`
    /// (a JSON object as the handler's description serves under `schemas`;
    /// `-` reads stdin).
    Schemas {
        task_queue: String,
        version: String,
        #[arg(long)]
        set: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List endpoints of the namespace.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete one endpoint version (refused while open runs are pinned to it).
    Delete {
        task_queue: String,
        version: String,
        /// Delete even with open runs pinned to the version; their pushes
        /// fail until they are moved.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// List a task queue's versions with the open runs pinned to each.
    Versions {
        task_queue: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Make a registered version current again (rollback): new runs pin to it.
    Promote {
        task_queue: String,
        version: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Move open runs from one version to another, recorded in each run's
    /// history (WorkflowExecutionOptionsUpdated).
    MoveRuns {
        task_queue: String,
        #[arg(long = "from")]
        from_version: String,
        #[arg(long = "to")]
        to_version: String,
        /// Why; recorded in every moved run's history.
        #[arg(long)]
        reason: String,
        /// Only this workflow's open run; repeat for more. Default: every
        /// open run pinned to --from.
        #[arg(long = "workflow-id")]
        workflow_ids: Vec<String>,
        #[arg(long)]
        identity: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Subcommand)]
pub enum WorkflowCmd {
    /// Start a workflow.
    Start(StartArgs),
    /// Show a workflow's status, pending activities and timers.
    Describe {
        workflow_id: String,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print a workflow's event history.
    Show {
        workflow_id: String,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Wait for a workflow's result.
    Result {
        workflow_id: String,
        #[arg(long)]
        run_id: Option<String>,
        /// How long to wait, e.g. 30s (up to 60s per request; repeated until done).
        #[arg(long, default_value = "60s")]
        wait: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List workflows, newest first unless the query says ORDER BY.
    List {
        /// A list filter, e.g. `WorkflowType = 'Order' AND ExecutionStatus = 'Running'`.
        #[arg(long, short = 'q')]
        query: Option<String>,
        #[arg(long = "type")]
        workflow_type: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Most runs to print (fetched page by page).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Start after the page this token ends (printed when there are more).
        #[arg(long)]
        page_token: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a closed run and its history now (retention does it later).
    Delete {
        workflow_id: String,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Count workflows a query matches; `GROUP BY ExecutionStatus` counts
    /// per status.
    Count {
        #[arg(long, short = 'q')]
        query: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Send a signal to a workflow's run.
    Signal {
        workflow_id: String,
        signal_name: String,
        /// Signal input as JSON.
        #[arg(long)]
        input: Option<String>,
        #[arg(long)]
        run_id: Option<String>,
        /// Retries with the same request id are recorded once.
        #[arg(long)]
        request_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Ask a workflow's query handler; nothing is recorded.
    Query {
        workflow_id: String,
        query_name: String,
        /// Query arguments as JSON.
        #[arg(long)]
        args: Option<String>,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Send an update to a workflow and wait for its outcome (or for the
    /// handler to start, with `--wait-for-stage accepted`).
    Update {
        workflow_id: String,
        update_name: String,
        /// Update arguments as a JSON array.
        #[arg(long)]
        args: Option<String>,
        /// Retries with the same update id get the first outcome.
        #[arg(long)]
        update_id: Option<String>,
        #[arg(long, default_value = "completed", value_parser = ["accepted", "completed"])]
        wait_for_stage: String,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Signal a workflow, starting it first if it has no open run.
    SignalWithStart {
        #[arg(long)]
        signal_name: String,
        /// Signal input as JSON.
        #[arg(long)]
        signal_input: Option<String>,
        #[command(flatten)]
        start: StartArgs,
    },
    /// Ask a workflow to cancel itself (its code decides how it finishes).
    ///
    /// With --query instead of a workflow id: a batch job over the runs the
    /// query matches (`baton batch start --operation cancel`); prints its id.
    Cancel {
        #[arg(required_unless_present = "query", conflicts_with = "query")]
        workflow_id: Option<String>,
        #[arg(long, conflicts_with = "query")]
        run_id: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        batch: ByQuery,
        #[command(flatten)]
        conn: Conn,
    },
    /// Terminate a workflow (no workflow code runs).
    ///
    /// With --query instead of a workflow id: a batch job over the runs the
    /// query matches (`baton batch start --operation terminate`); prints its id.
    Terminate {
        #[arg(required_unless_present = "query", conflicts_with = "query")]
        workflow_id: Option<String>,
        #[arg(long, conflicts_with = "query")]
        run_id: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        batch: ByQuery,
        #[command(flatten)]
        conn: Conn,
    },
    /// Start a new run from a run's history up to a completed workflow task;
    /// the open run is terminated.
    Reset {
        workflow_id: String,
        /// A WorkflowTaskCompleted event id of the run.
        #[arg(
            long,
            required_unless_present = "reset_type",
            conflicts_with = "reset_type"
        )]
        event_id: Option<i64>,
        /// The first or last completed workflow task.
        #[arg(long = "type", value_enum)]
        reset_type: Option<ResetType>,
        #[arg(long)]
        reason: String,
        /// Do not re-apply the signals recorded after the reset point.
        #[arg(long)]
        no_reapply_signals: bool,
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ResetType {
    First,
    Last,
}

#[derive(Args)]
pub struct StartArgs {
    /// Workflow type name.
    #[arg(long = "type")]
    workflow_type: String,
    #[arg(long)]
    task_queue: String,
    /// Workflow id; a random one if omitted.
    #[arg(long)]
    id: Option<String>,
    /// Input as JSON.
    #[arg(long)]
    input: Option<String>,
    #[arg(long)]
    execution_timeout: Option<String>,
    #[arg(long)]
    run_timeout: Option<String>,
    #[arg(long)]
    task_timeout: Option<String>,
    /// ALLOW_DUPLICATE, ALLOW_DUPLICATE_FAILED_ONLY, REJECT_DUPLICATE or TERMINATE_IF_RUNNING.
    #[arg(long)]
    id_reuse_policy: Option<String>,
    /// FAIL, USE_EXISTING or TERMINATE_EXISTING.
    #[arg(long)]
    id_conflict_policy: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    /// Memo as a JSON object, shown by describe.
    #[arg(long)]
    memo: Option<String>,
    /// Custom search attributes as a JSON object, e.g. '{"CustomerId": "c-17"}'.
    #[arg(long)]
    search_attributes: Option<String>,
    /// Workflow retry policy as JSON, e.g. '{"maximum_attempts": 3}'.
    #[arg(long)]
    retry_policy: Option<String>,
    #[command(flatten)]
    conn: Conn,
}

/// A JSON argument; absent is `null`.
pub(super) fn json_arg(arg: Option<&str>, flag: &str) -> anyhow::Result<Value> {
    match arg {
        Some(s) => serde_json::from_str(s).with_context(|| format!("{flag} is not valid JSON")),
        None => Ok(Value::Null),
    }
}

/// The workflow id (a generated one if `--id` is absent) and the start body.
fn start_body(a: &StartArgs) -> anyhow::Result<(String, Value)> {
    let input = json_arg(a.input.as_deref(), "--input")?;
    let id =
        a.id.clone()
            .unwrap_or_else(|| format!("{}-{}", a.workflow_type, uuid::Uuid::new_v4().simple()));
    let mut body = json!({
        "workflow_type": a.workflow_type,
        "task_queue": a.task_queue,
        "input": input,
    });
    for (key, val) in [
        ("workflow_execution_timeout", &a.execution_timeout),
        ("workflow_run_timeout", &a.run_timeout),
        ("workflow_task_timeout", &a.task_timeout),
        ("id_reuse_policy", &a.id_reuse_policy),
        ("id_conflict_policy", &a.id_conflict_policy),
        ("request_id", &a.request_id),
    ] {
        if let Some(v) = val {
            body[key] = Value::String(v.clone());
        }
    }
    for (key, val, flag) in [
        ("memo", &a.memo, "--memo"),
        (
            "search_attributes",
            &a.search_attributes,
            "--search-attributes",
        ),
        ("retry_policy", &a.retry_policy, "--retry-policy"),
    ] {
        if val.is_some() {
            body[key] = json_arg(val.as_deref(), flag)?;
        }
    }
    Ok((id, body))
}

impl Conn {
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.address.trim_end_matches('/'), path);
        let mut req = self.http()?.request(method, &url);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the Baton server at {}", self.address))?;
        let status = resp.status();
        let text = resp.text().await.context("reading the answer")?;
        if !status.is_success() {
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|p| p.get("detail").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text);
            bail!("{} ({})", detail, status.as_u16());
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).context("the server answered with invalid JSON")
    }

    /// The HTTP client, trusting `--ca-cert` too.
    fn http(&self) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &self.ca_cert {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading --ca-cert {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-cert {}: not a PEM bundle", path.display()))?;
            if roots.is_empty() {
                bail!("--ca-cert {}: no certificate in the file", path.display());
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        builder.build().context("building the HTTP client")
    }

    /// `--namespace`.
    pub(super) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(super) fn ns_path(&self, rest: &str) -> String {
        format!("/api/v1/namespaces/{}{rest}", enc(&self.namespace))
    }
}

/// What an SDK handler says it serves (a GET on its URL), as one line per
/// kind; `None` when the handler does not answer that way.
/// The description the handler serves on GET (docs/protocol.md §1.6);
/// `None` if it does not answer with JSON.
async fn handler_description(url: &str) -> Option<Value> {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// The served types of a handler's description, for the table output.
fn served_types(v: &Value) -> Option<String> {
    let names = |key: &str| -> Option<String> {
        let items = v.get(key)?.as_array()?;
        let names: Vec<&str> = items
            .iter()
            .filter_map(|i| i.get("name").and_then(Value::as_str))
            .collect();
        Some(names.join(", "))
    };
    Some(format!(
        "serves workflows: {}\nserves activities: {}",
        names("workflows")?,
        names("activities")?
    ))
}

/// Percent-encodes one path segment.
pub(super) fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn run_query(run_id: &Option<String>) -> String {
    run_id
        .as_ref()
        .map(|r| format!("?run_id={}", enc(r)))
        .unwrap_or_default()
}

pub async fn namespace(cmd: NamespaceCmd) -> anyhow::Result<()> {
    // Describe adds the run counts; the other verbs have none to print.
    let fields = [
        ("name", "/name"),
        ("description", "/description"),
        ("retention", "/retention"),
        ("created_at", "/created_at"),
        ("open_runs", "/open_runs"),
        ("closed_runs", "/closed_runs"),
    ];
    match cmd {
        NamespaceCmd::Create {
            name,
            description,
            retention,
            conn,
        } => {
            let mut body = json!({ "name": name, "description": description });
            if let Some(r) = retention {
                body["retention"] = json!(r);
            }
            let v = conn
                .call(Method::POST, "/api/v1/namespaces", Some(body))
                .await?;
            print_fields(conn.output, &v, &fields);
        }
        NamespaceCmd::Update {
            name,
            description,
            retention,
            conn,
        } => {
            let mut body = json!({});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            if let Some(r) = retention {
                body["retention"] = json!(r);
            }
            let path = format!("/api/v1/namespaces/{}", enc(&name));
            let v = conn.call(Method::PATCH, &path, Some(body)).await?;
            print_fields(conn.output, &v, &fields);
        }
        NamespaceCmd::List { conn } => {
            let v = conn.call(Method::GET, "/api/v1/namespaces", None).await?;
            let cols = [
                ("NAME", "/name"),
                ("RETENTION", "/retention"),
                ("DESCRIPTION", "/description"),
                ("CREATED", "/created_at"),
            ];
            print(conn.output, &v, Some("/namespaces"), &cols);
        }
        NamespaceCmd::Describe { name, conn } => {
            let v = conn
                .call(
                    Method::GET,
                    &format!("/api/v1/namespaces/{}", enc(&name)),
                    None,
                )
                .await?;
            print_fields(conn.output, &v, &fields);
        }
        NamespaceCmd::SearchAttribute(cmd) => {
            super::search_attributes::search_attribute(cmd).await?;
        }
    }
    Ok(())
}

/// `--concurrency-key LIMIT:TEMPLATE` as the API's `{key, limit}`.
fn concurrency_key(arg: &str) -> Result<Value, String> {
    let (limit, key) = arg
        .split_once(':')
        .ok_or_else(|| "expected LIMIT:TEMPLATE".to_owned())?;
    let limit: u32 = limit
        .parse()
        .map_err(|_| format!("LIMIT {limit:?} is not a whole number"))?;
    Ok(json!({"key": key, "limit": limit}))
}

pub async fn endpoint(cmd: EndpointCmd) -> anyhow::Result<()> {
    match cmd {
        EndpointCmd::Register {
            task_queue,
            url,
            version,
            secrets,
            max_concurrency,
            rate_limit,
            rate_burst,
            concurrency_keys,
            no_schemas,
            conn,
        } => {
            let description = handler_description(&url).await;
            let schemas = match &description {
                Some(d) if !no_schemas => d.get("schemas").cloned(),
                _ => None,
            };
            let features = description
                .as_ref()
                .and_then(|d| d.get("features"))
                .cloned();
            let body = json!({
                "task_queue": task_queue,
                "url": url,
                "version": version,
                "secrets": secrets,
                "max_concurrency": max_concurrency,
                "schemas": schemas,
                "rate_limit": rate_limit.map(|r| json!({"per_second": r, "burst": rate_burst})),
                "concurrency_keys": concurrency_keys,
                "features": features,
            });
            let v = conn
                .call(Method::POST, &conn.ns_path("/endpoints"), Some(body))
                .await?;
            print_fields(
                conn.output,
                &v,
                &[
                    ("task_queue", "/task_queue"),
                    ("version", "/version"),
                    ("url", "/url"),
                    ("max_concurrency", "/max_concurrency"),
                    ("rate_limit_per_second", "/rate_limit/per_second"),
                    ("rate_limit_burst", "/rate_limit/burst"),
                    ("concurrency_keys", "/concurrency_keys"),
                    ("generated_secret", "/generated_secret"),
                ],
            );
            if v.get("generated_secret").is_some() && matches!(conn.output, Output::Table) {
                eprintln!(
                    "\nConfigure your handler with the generated secret; it is not shown again."
                );
            }
            if matches!(conn.output, Output::Table) {
                if let Some(served) = description.as_ref().and_then(served_types) {
                    println!("{served}");
                }
                if schemas.is_some() {
                    println!("input schemas: registered from the handler's description");
                }
            }
        }
        EndpointCmd::Schemas {
            task_queue,
            version,
            set,
            conn,
        } => {
            let path = conn.ns_path(&format!(
                "/endpoints/{}/versions/{}/schemas",
                enc(&task_queue),
                enc(&version)
            ));
            let v = match set {
                Some(file) => {
                    let text = if file == "-" {
                        std::io::read_to_string(std::io::stdin())?
                    } else {
                        std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
                    };
                    let schemas: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{file} is not JSON"))?;
                    let body = json!({ "schemas": schemas });
                    conn.call(Method::PUT, &path, Some(body)).await?
                }
                None => conn.call(Method::GET, &path, None).await?,
            };
            println!("{}", serde_json::to_string_pretty(&v["schemas"])?);
        }
        EndpointCmd::List { conn } => {
            let v = conn
                .call(Method::GET, &conn.ns_path("/endpoints"), None)
                .await?;
            let cols = [
                ("TASK QUEUE", "/task_queue"),
                ("VERSION", "/version"),
                ("CURRENT", "/is_current"),
                ("URL", "/url"),
                ("MAX CONCURRENCY", "/max_concurrency"),
            ];
            print(conn.output, &v, Some("/endpoints"), &cols);
        }
        EndpointCmd::Delete {
            task_queue,
            version,
            force,
            conn,
        } => {
            let mut path = conn.ns_path(&format!(
                "/endpoints/{}/{}",
                enc(&task_queue),
                enc(&version)
            ));
            if force {
                path.push_str("?force=true");
            }
            conn.call(Method::DELETE, &path, None).await?;
            println!("deleted endpoint {task_queue} version {version}");
        }
        EndpointCmd::Versions { task_queue, conn } => {
            let path = conn.ns_path(&format!("/endpoints/{}/versions", enc(&task_queue)));
            let v = conn.call(Method::GET, &path, None).await?;
            let cols = [
                ("VERSION", "/version"),
                ("CURRENT", "/is_current"),
                ("OPEN RUNS", "/open_runs"),
                ("REGISTERED", "/registered"),
                ("URL", "/url"),
                ("CREATED", "/created_at"),
            ];
            print(conn.output, &v, Some("/versions"), &cols);
        }
        EndpointCmd::Promote {
            task_queue,
            version,
            conn,
        } => {
            let path = conn.ns_path(&format!(
                "/endpoints/{}/versions/{}/promote",
                enc(&task_queue),
                enc(&version)
            ));
            let v = conn.call(Method::POST, &path, None).await?;
            print_fields(
                conn.output,
                &v,
                &[
                    ("task_queue", "/task_queue"),
                    ("version", "/version"),
                    ("current", "/is_current"),
                    ("url", "/url"),
                ],
            );
        }
        EndpointCmd::MoveRuns {
            task_queue,
            from_version,
            to_version,
            reason,
            workflow_ids,
            identity,
            conn,
        } => {
            let path = conn.ns_path(&format!(
                "/endpoints/{}/versions/{}/move-runs",
                enc(&task_queue),
                enc(&to_version)
            ));
            let mut body = json!({"from_version": from_version, "reason": reason});
            if !workflow_ids.is_empty() {
                body["workflow_ids"] = json!(workflow_ids);
            }
            if let Some(identity) = identity {
                body["identity"] = json!(identity);
            }
            let v = conn.call(Method::POST, &path, Some(body)).await?;
            match conn.output {
                Output::Json => print(conn.output, &v, None, &[]),
                Output::Table => println!(
                    "moved {} run(s) of {task_queue} from version {from_version} to {to_version}",
                    v["moved"]
                ),
            }
        }
    }
    Ok(())
}

pub async fn workflow(cmd: WorkflowCmd) -> anyhow::Result<()> {
    match cmd {
        WorkflowCmd::Start(a) => {
            let (id, body) = start_body(&a)?;
            let path = a.conn.ns_path(&format!("/workflows/{}", enc(&id)));
            let mut v = a.conn.call(Method::POST, &path, Some(body)).await?;
            v["workflow_id"] = Value::String(id);
            print_fields(
                a.conn.output,
                &v,
                &[
                    ("workflow_id", "/workflow_id"),
                    ("run_id", "/run_id"),
                    ("started", "/started"),
                ],
            );
        }
        WorkflowCmd::Describe {
            workflow_id,
            run_id,
            conn,
        } => {
            let path = conn.ns_path(&format!(
                "/workflows/{}{}",
                enc(&workflow_id),
                run_query(&run_id)
            ));
            let v = conn.call(Method::GET, &path, None).await?;
            print_fields(
                conn.output,
                &v,
                &[
                    ("workflow_id", "/execution/workflow_id"),
                    ("run_id", "/execution/run_id"),
                    ("type", "/execution/workflow_type"),
                    ("task_queue", "/execution/task_queue"),
                    ("pinned_version", "/pinned_version"),
                    ("status", "/execution/status"),
                    ("start_time", "/execution/start_time"),
                    ("close_time", "/execution/close_time"),
                    ("history_length", "/execution/history_length"),
                    ("attempt", "/attempt"),
                    ("next_run_id", "/new_execution_run_id"),
                    ("memo", "/memo"),
                    ("workflow_task", "/pending_workflow_task"),
                    ("waiting", "/waiting_reason"),
                    ("parent_workflow_id", "/parent/workflow_id"),
                    ("parent_run_id", "/parent/run_id"),
                    ("parent_close_policy", "/parent/parent_close_policy"),
                ],
            );
            if matches!(conn.output, Output::Table) {
                print_sections(
                    &v,
                    &[
                        (
                            "Pending activities",
                            "/pending_activities",
                            &[
                                ("ACTIVITY ID", "/activity_id"),
                                ("TYPE", "/activity_type"),
                                ("STATE", "/state"),
                                ("ATTEMPT", "/attempt"),
                                ("LAST FAILURE", "/last_failure/message"),
                            ][..],
                        ),
                        (
                            "Pending timers",
                            "/pending_timers",
                            &[("TIMER ID", "/timer_id"), ("FIRES AT", "/fire_time")][..],
                        ),
                        (
                            "Children",
                            "/children",
                            &[
                                ("WORKFLOW ID", "/workflow_id"),
                                ("RUN ID", "/run_id"),
                                ("TYPE", "/workflow_type"),
                                ("STATUS", "/status"),
                                ("PARENT CLOSE POLICY", "/parent_close_policy"),
                            ][..],
                        ),
                    ],
                );
                super::search_attributes::print_described(&v);
            }
        }
        WorkflowCmd::Show {
            workflow_id,
            run_id,
            conn,
        } => {
            let mut events = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let mut query = vec![];
                if let Some(r) = &run_id {
                    query.push(format!("run_id={}", enc(r)));
                }
                if let Some(t) = &token {
                    query.push(format!("next_page_token={}", enc(t)));
                }
                let path = conn.ns_path(&format!(
                    "/workflows/{}/history?{}",
                    enc(&workflow_id),
                    query.join("&")
                ));
                let v = conn.call(Method::GET, &path, None).await?;
                events.extend(v["events"].as_array().cloned().unwrap_or_default());
                token = v["next_page_token"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let v = json!({ "events": events });
            let cols = [
                ("ID", "/event_id"),
                ("TIME", "/event_time"),
                ("TYPE", "/event_type"),
                ("ATTRIBUTES", "/attributes"),
            ];
            print(conn.output, &v, Some("/events"), &cols);
        }
        WorkflowCmd::Result {
            workflow_id,
            run_id,
            wait,
            conn,
        } => {
            let total: crate::time::Duration = wait.parse().context("--wait")?;
            let deadline = std::time::Instant::now() + total.to_std();
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let step = left.min(std::time::Duration::from_secs(60));
                let mut query = format!("?wait={}ms", step.as_millis());
                if let Some(r) = &run_id {
                    query.push_str(&format!("&run_id={}", enc(r)));
                }
                let path = conn.ns_path(&format!("/workflows/{}/result{query}", enc(&workflow_id)));
                let v = conn.call(Method::GET, &path, None).await?;
                let status = v["status"].as_str().unwrap_or_default().to_owned();
                if status != "RUNNING" || left.is_zero() {
                    match conn.output {
                        Output::Json => print(conn.output, &v, None, &[]),
                        Output::Table => match status.as_str() {
                            "COMPLETED" => println!("{}", v["result"]),
                            "RUNNING" => bail!("workflow {workflow_id} is still running"),
                            other => bail!(
                                "workflow {workflow_id} closed as {other}{}",
                                v.pointer("/failure/message")
                                    .and_then(Value::as_str)
                                    .map(|m| format!(": {m}"))
                                    .unwrap_or_default()
                            ),
                        },
                    }
                    return Ok(());
                }
            }
        }
        WorkflowCmd::List {
            query,
            workflow_type,
            status,
            limit,
            page_token,
            conn,
        } => {
            let mut params = Vec::new();
            if let Some(q) = query {
                params.push(format!("query={}", enc(&q)));
            }
            if let Some(t) = workflow_type {
                params.push(format!("workflow_type={}", enc(&t)));
            }
            if let Some(s) = status {
                params.push(format!("status={}", enc(&s)));
            }
            // Pages of at most 1,000 (the server's limit) until `limit`.
            let mut executions: Vec<Value> = Vec::new();
            let mut token = page_token;
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            while executions.len() < limit {
                let mut page_params = params.clone();
                let want = (limit - executions.len()).min(1000);
                page_params.push(format!("page_size={want}"));
                if let Some(t) = &token {
                    page_params.push(format!("next_page_token={}", enc(t)));
                }
                let path = conn.ns_path(&format!("/workflows?{}", page_params.join("&")));
                let page = conn.call(Method::GET, &path, None).await?;
                if let Some(runs) = page["executions"].as_array() {
                    executions.extend(runs.iter().cloned());
                }
                token = page["next_page_token"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let v = json!({ "executions": executions, "next_page_token": token });
            let cols = [
                ("WORKFLOW ID", "/workflow_id"),
                ("TYPE", "/workflow_type"),
                ("STATUS", "/status"),
                ("STARTED", "/start_time"),
                ("CLOSED", "/close_time"),
                ("RUN ID", "/run_id"),
            ];
            print(conn.output, &v, Some("/executions"), &cols);
            if let (Output::Table, Some(token)) = (conn.output, &token) {
                eprintln!("more runs: add --page-token {token}");
            }
        }
        WorkflowCmd::Delete {
            workflow_id,
            run_id,
            conn,
        } => {
            let mut path = conn.ns_path(&format!("/workflows/{}", enc(&workflow_id)));
            if let Some(r) = run_id {
                path.push_str(&format!("?run_id={}", enc(&r)));
            }
            conn.call(Method::DELETE, &path, None).await?;
            match conn.output {
                Output::Json => print(conn.output, &json!({"deleted": workflow_id}), None, &[]),
                Output::Table => println!("deleted {workflow_id}"),
            }
        }
        WorkflowCmd::Count { query, conn } => {
            let path = match query {
                Some(q) => conn.ns_path(&format!("/workflow-count?query={}", enc(&q))),
                None => conn.ns_path("/workflow-count"),
            };
            let v = conn.call(Method::GET, &path, None).await?;
            match (conn.output, v["groups"].as_array()) {
                (Output::Table, Some(_)) => {
                    let cols = [("STATUS", "/group_values/0"), ("COUNT", "/count")];
                    print(conn.output, &v, Some("/groups"), &cols);
                    println!("total {}", v["count"]);
                }
                (Output::Table, None) => println!("{}", v["count"]),
                (Output::Json, _) => print(conn.output, &v, None, &[]),
            }
        }
        WorkflowCmd::Signal {
            workflow_id,
            signal_name,
            input,
            run_id,
            request_id,
            conn,
        } => {
            let input = json_arg(input.as_deref(), "--input")?;
            let path = conn.ns_path(&format!(
                "/workflows/{}/signal/{}",
                enc(&workflow_id),
                enc(&signal_name)
            ));
            let body = json!({ "input": input, "run_id": run_id, "request_id": request_id });
            let v = conn.call(Method::POST, &path, Some(body)).await?;
            match conn.output {
                Output::Json => print(conn.output, &v, None, &[]),
                Output::Table => println!(
                    "signalled {workflow_id} (run {})",
                    v["run_id"].as_str().unwrap_or_default()
                ),
            }
        }
        WorkflowCmd::Query {
            workflow_id,
            query_name,
            args,
            run_id,
            conn,
        } => {
            let args = json_arg(args.as_deref(), "--args")?;
            let path = conn.ns_path(&format!(
                "/workflows/{}/query/{}",
                enc(&workflow_id),
                enc(&query_name)
            ));
            let body = json!({ "args": args, "run_id": run_id });
            let v = conn.call(Method::POST, &path, Some(body)).await?;
            match conn.output {
                Output::Json => print(conn.output, &v, None, &[]),
                Output::Table => println!("{}", v["result"]),
            }
        }
        WorkflowCmd::Update {
            workflow_id,
            update_name,
            args,
            update_id,
            wait_for_stage,
            run_id,
            conn,
        } => {
            let args = json_arg(args.as_deref(), "--args")?;
            let stage = wait_for_stage.to_uppercase();
            let path = conn.ns_path(&format!(
                "/workflows/{}/update/{}",
                enc(&workflow_id),
                enc(&update_name)
            ));
            let body = json!({ "args": args, "update_id": update_id, "run_id": run_id, "wait_for_stage": stage });
            let mut v = conn.call(Method::POST, &path, Some(body)).await?;
            // The server waits a bounded time and answers with the stage
            // reached; wait on by update id.
            let reached = |v: &Value| v["stage"] == "COMPLETED" || v["stage"] == stage.as_str();
            while !reached(&v) {
                let path = conn.ns_path(&format!(
                    "/workflows/{}/updates/{}?wait_for_stage={stage}&run_id={}",
                    enc(&workflow_id),
                    enc(v["update_id"].as_str().unwrap_or_default()),
                    enc(v["run_id"].as_str().unwrap_or_default())
                ));
                v = conn.call(Method::GET, &path, None).await?;
            }
            if let Some(message) = v["failure"]["message"].as_str() {
                bail!(
                    "update {} failed: {message}",
                    v["update_id"].as_str().unwrap_or_default()
                );
            }
            match (conn.output, v.get("result")) {
                (Output::Table, Some(result)) => println!("{result}"),
                (Output::Table, None) => println!(
                    "update {} {}",
                    v["update_id"].as_str().unwrap_or_default(),
                    v["stage"].as_str().unwrap_or_default().to_lowercase()
                ),
                (Output::Json, _) => print(conn.output, &v, None, &[]),
            }
        }
        WorkflowCmd::SignalWithStart {
            signal_name,
            signal_input,
            start: a,
        } => {
            if a.id_conflict_policy.is_some() {
                bail!("signal-with-start always uses the open run (USE_EXISTING); drop --id-conflict-policy");
            }
            let (id, mut body) = start_body(&a)?;
            body["signal_input"] = json_arg(signal_input.as_deref(), "--signal-input")?;
            let path = a.conn.ns_path(&format!(
                "/workflows/{}/signal-with-start/{}",
                enc(&id),
                enc(&signal_name)
            ));
            let mut v = a.conn.call(Method::POST, &path, Some(body)).await?;
            v["workflow_id"] = Value::String(id);
            print_fields(
                a.conn.output,
                &v,
                &[
                    ("workflow_id", "/workflow_id"),
                    ("run_id", "/run_id"),
                    ("started", "/started"),
                ],
            );
        }
        WorkflowCmd::Cancel {
            workflow_id,
            run_id,
            reason,
            batch,
            conn,
        } => {
            let Some(workflow_id) = workflow_id else {
                return batch.start(&conn, "cancel", reason).await;
            };
            let path = conn.ns_path(&format!("/workflows/{}/cancel", enc(&workflow_id)));
            let body = json!({ "run_id": run_id, "reason": reason });
            conn.call(Method::POST, &path, Some(body)).await?;
            println!("cancellation requested for {workflow_id}");
        }
        WorkflowCmd::Terminate {
            workflow_id,
            run_id,
            reason,
            batch,
            conn,
        } => {
            let Some(workflow_id) = workflow_id else {
                return batch.start(&conn, "terminate", reason).await;
            };
            let path = conn.ns_path(&format!("/workflows/{}/terminate", enc(&workflow_id)));
            let body = json!({ "run_id": run_id, "reason": reason });
            conn.call(Method::POST, &path, Some(body)).await?;
            println!("terminated {workflow_id}");
        }
        WorkflowCmd::Reset {
            workflow_id,
            event_id,
            reset_type,
            reason,
            no_reapply_signals,
            run_id,
            conn,
        } => {
            let path = conn.ns_path(&format!("/workflows/{}/reset", enc(&workflow_id)));
            let reset_type = reset_type.map(|t| match t {
                ResetType::First => "FIRST_WORKFLOW_TASK",
                ResetType::Last => "LAST_WORKFLOW_TASK",
            });
            let body = json!({
                "run_id": run_id,
                "event_id": event_id,
                "reset_type": reset_type,
                "reason": reason,
                "reapply_signals": !no_reapply_signals,
            });
            let mut v = conn.call(Method::POST, &path, Some(body)).await?;
            v["workflow_id"] = Value::String(workflow_id);
            print_fields(
                conn.output,
                &v,
                &[("workflow_id", "/workflow_id"), ("run_id", "/run_id")],
            );
        }
    }
    Ok(())
}
