//! Source hygiene that the compiler cannot check: the engine stays pure
//! (ARCHITECTURE.md, "engine"), and every source file says what it owns.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable source dir")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources(sub: &str) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(sub), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable source file");
            (p, text)
        })
        .collect()
}

#[test]
fn engine_does_no_io_reads_no_clock_and_draws_no_randomness() {
    let forbidden = [
        "tokio",
        "sqlx",
        "reqwest",
        "axum",
        "hyper",
        "std::fs",
        "std::net",
        "std::thread",
        "SystemTime",
        "Instant",
        "rand::",
        "thread_rng",
        "Uuid::new",
        "now_v7",
        "RunId::generate",
        "SystemClock",
        "crate::store",
        "crate::apply",
        "crate::dispatch",
        "crate::api",
    ];
    let mut offences = Vec::new();
    for (path, text) in sources("src/engine") {
        if path.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        // Unit tests at the end of a file may build ids however they like.
        let body = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in body.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in forbidden {
                if code.contains(word) {
                    offences.push(format!("{}:{}: {word}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the engine must stay pure:\n{}",
        offences.join("\n")
    );
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<String> = sources("src")
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc:\n{}",
        missing.join("\n")
    );
}
