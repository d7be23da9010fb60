//! The `baton` binary: parse the command line, set up logging, run.

// See Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    baton::cli::main().await
}
