//! Embeds the web UI (`ui/index.html` and everything under `ui/app/`) in
//! the binary: writes `$OUT_DIR/ui_assets.rs`, a list of `(path, bytes)`
//! pairs made of `include_bytes!`, which `src/ui` serves. A generated list
//! rather than an embedding crate: no dependency, and cargo re-runs this
//! script when any file under `ui/` changes (rerun-if-changed on a folder).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let ui = root.join("ui");
    println!("cargo:rerun-if-changed=ui/index.html");
    println!("cargo:rerun-if-changed=ui/app");
    let mut files = vec![ui.join("index.html")];
    collect(&ui.join("app"), &mut files);
    files.retain(|f| f.is_file());
    files.sort();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("ui_assets.rs");
    let mut code = String::from("&[\n");
    for file in &files {
        let rel = file
            .strip_prefix(&ui)
            .expect("under ui/")
            .to_string_lossy()
            .replace('\\', "/");
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?}) as &[u8]),\n",
            file.to_string_lossy()
        ));
    }
    code.push(']');
    let mut f = fs::File::create(&out).expect("creating ui_assets.rs");
    f.write_all(code.as_bytes()).expect("writing ui_assets.rs");
}
