//! Fingerprints the sources that decide what code a trace becomes: tir (lowering,
//! interpreter), schedule (the primitives a trace replays) and codegen (the C and
//! OpenCL emitters and harnesses). The fingerprint is part of [`GRIM_VERSION`], which
//! every record carries, so a tuning run after any change to them measures again what
//! older code measured instead of trusting costs of code it no longer generates.
//!
//! FNV-1a over every file's path (relative to the workspace) and bytes, in path
//! order. Outside this workspace (the sources absent) the fingerprint is `unknown`.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let root = Path::new(&manifest).join("..");
    let mut files = Vec::new();
    for dir in ["tir/src", "schedule/src", "codegen/src"] {
        println!("cargo:rerun-if-changed=../{dir}");
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        eat(rel.to_string_lossy().as_bytes());
        eat(&[0]);
        eat(&std::fs::read(f).unwrap_or_default());
        eat(&[0]);
    }
    let fingerprint = if files.is_empty() {
        "unknown".to_string()
    } else {
        format!("{h:016x}")
    };
    println!("cargo:rustc-env=GRIM_CODE_FINGERPRINT={fingerprint}");
}
