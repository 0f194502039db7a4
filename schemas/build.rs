//! Embeds every Avro schema file under `avro/` into the crate, so that adding a schema needs no
//! code change and the binaries carry their contract with them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "avsc") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let avro = root.join("avro");
    println!("cargo:rerun-if-changed={}", avro.display());
    let mut files = Vec::new();
    collect(&avro, &mut files);
    files.sort();
    let mut code = String::from(
        "/// Every `.avsc` file under `schemas/avro/`: (path relative to it, contents).\npub static AVRO_FILES: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file
            .strip_prefix(&avro)
            .expect("file under avro/")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(code, "    ({rel:?}, include_str!({:?})),", file.display()).expect("write");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("avro_files.rs");
    std::fs::write(out, code).expect("writing avro_files.rs");
}
