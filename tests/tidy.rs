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
    // The schedule rules and the webhook verifiers are as pure as the
    // engine's.
    let pure = sources("src/engine")
        .into_iter()
        .chain(sources("src/schedule"))
        .chain(sources("src/webhook"));
    for (path, text) in pure {
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

/// The engine's modules in dependency order (engine/mod.rs, "Layers"):
/// each may import only the ones before it. `mod.rs` itself re-exports
/// everything and defines `Ctx`, `Limits`, `Transition` (with its
/// `CheckpointReport`) and `Rejection` ([`ENGINE_ROOT_ITEMS`]), which sit
/// between the types and the rules.
const ENGINE_LAYERS: &[&str] = &[
    "failure", "token", "retry", "policy", "search", "event", "effect", "command", "state", "mod",
    "decide", "batch",
];

/// What `engine/mod.rs` defines itself rather than re-exports.
const ENGINE_ROOT_ITEMS: &[&str] = &[
    "Ctx",
    "Limits",
    "Transition",
    "CheckpointReport",
    "Rejection",
];

/// The engine modules a file's code names (`super::x`, `crate::engine::x`,
/// brace groups included), relative to the engine: `None` for a name the
/// engine only re-exports, which hides the module it comes from. `super`
/// in a file of a folder module (other than its `mod.rs`) names a sibling
/// in the same layer and is skipped.
fn engine_imports(code: &str, super_is_engine: bool) -> Vec<(String, Option<&'static str>)> {
    let mut prefixes = vec!["crate::engine::"];
    if super_is_engine {
        prefixes.push("super::");
    }
    let mut out = Vec::new();
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            if prefix == "super::" && code[..at].ends_with("::") {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let items: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => {
                    let mut depth = 0;
                    let end = group
                        .char_indices()
                        .find(|&(_, c)| {
                            match c {
                                '{' => depth += 1,
                                '}' if depth == 0 => return true,
                                '}' => depth -= 1,
                                _ => {}
                            }
                            false
                        })
                        .map_or(group.len(), |(i, _)| i);
                    let mut items = Vec::new();
                    let (mut depth, mut start) = (0, 0);
                    for (i, c) in group[..end].char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                items.push(&group[start..i]);
                                start = i + 1;
                            }
                            _ => {}
                        }
                    }
                    items.push(&group[start..end]);
                    items
                }
                None => vec![rest],
            };
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*')
                    .collect();
                if name.is_empty() || name == "self" || name == "*" {
                    continue;
                }
                let module = if ENGINE_ROOT_ITEMS.contains(&name.as_str()) {
                    Some("mod")
                } else {
                    ENGINE_LAYERS.iter().copied().find(|m| *m == name)
                };
                out.push((name, module));
            }
        }
    }
    out
}

/// Offences against [`ENGINE_LAYERS`] in one engine file (`rel`: its path
/// below `src/engine`), as "line: message".
fn layer_offences(rel: &Path, text: &str) -> Vec<String> {
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let module = match parts.as_slice() {
        [file] => file.trim_end_matches(".rs").to_owned(),
        [dir, ..] => dir.clone(),
        [] => return Vec::new(),
    };
    let super_is_engine = parts.len() == 1 || parts.last().is_some_and(|f| f == "mod.rs");
    if module == "mod" || module == "tests" {
        // The facade re-exports every module; the tests may use anything.
        return Vec::new();
    }
    let Some(rank) = ENGINE_LAYERS.iter().position(|m| *m == module) else {
        return vec![format!(
            "module `{module}` is not in ENGINE_LAYERS (tests/tidy.rs): give it its place"
        )];
    };
    // Unit tests at the end of a file may reach for anything.
    let body = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = body
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut offences = Vec::new();
    for (name, target) in engine_imports(&code, super_is_engine) {
        match target {
            None => offences.push(format!(
                "`{name}` is imported through the engine's re-exports; name its module"
            )),
            Some(target) if target == module => {}
            Some(target) => {
                let target_rank = ENGINE_LAYERS
                    .iter()
                    .position(|m| *m == target)
                    .expect("targets come from ENGINE_LAYERS");
                if target_rank > rank {
                    offences.push(format!(
                        "`{module}` imports `{name}` from `{target}`, a higher layer"
                    ));
                }
            }
        }
    }
    offences
}

#[test]
fn engine_modules_depend_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut offences = Vec::new();
    for (path, text) in sources("src/engine") {
        let rel = path
            .strip_prefix(&root)
            .expect("engine sources are below src/engine");
        for offence in layer_offences(rel, &text) {
            offences.push(format!("{}: {offence}", path.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "engine modules must depend one way, in ENGINE_LAYERS order \
         (types → state → rules → batch; engine/mod.rs):\n{}",
        offences.join("\n")
    );
}

#[test]
fn layer_check_catches_an_upward_import() {
    let check = |rel: &str, text: &str| layer_offences(Path::new(rel), text);
    assert_eq!(
        check("state.rs", "use super::decide::Builder;\n"),
        ["`state` imports `decide` from `decide`, a higher layer"]
    );
    assert_eq!(
        check(
            "event.rs",
            "use crate::engine::{\n    failure::Failure,\n    state::RunState,\n};\n"
        ),
        ["`event` imports `state` from `state`, a higher layer"]
    );
    assert_eq!(
        check("command.rs", "use super::{effect::Task, Transition};\n"),
        ["`command` imports `Transition` from `mod`, a higher layer"]
    );
    assert_eq!(
        check("effect.rs", "use crate::engine::RunState;\n"),
        ["`RunState` is imported through the engine's re-exports; name its module"]
    );
    // Siblings inside a folder module share its layer; comments and unit
    // tests are not code that counts.
    assert!(check("decide/timers.rs", "use super::builder::Builder;\n").is_empty());
    assert!(check("state.rs", "// see super::decide\n").is_empty());
    assert!(check("retry.rs", "#[cfg(test)]\nmod tests { use super::*; }\n").is_empty());
    assert!(check("batch.rs", "use super::{decide, Ctx};\n").is_empty());
}
