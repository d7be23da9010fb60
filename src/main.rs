//! The `baton` binary: parse the command line, set up logging, run.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton::cli::main().await
}
