//! Retired guest instruction counts under qemu-aarch64: the deterministic performance
//! signal of the emulated device (qemu's wall time is meaningless).
//!
//! A tiny TCG plugin written here (Debian's qemu-user 7.2 ships no plugin header, so
//! the few plugin-API declarations it needs are spelled out) adds each translated
//! block's instruction count to a counter every time the block runs, and prints
//! `GRIM-INSNS N` when qemu exits. The plugin is built with the host C compiler.
//!
//! In counting mode (`REPEAT = 0`) the measurement binary runs a kernel `1 + number`
//! times and nothing else, so running it with `number = 1` and `number = 2` and taking
//! the difference gives the instructions of one kernel run (plus the two or three
//! instructions of the calling loop), without process start-up and file I/O.
//! OpenMP runs with one thread so the count is deterministic.

use crate::error::CodegenError;
use crate::run::write_inputs;
use crate::toolchain::{require, run_with_timeout};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tir::{Function, Tensor};

/// The C source of the instruction-counting plugin (QEMU plugin API version 1).
pub const PLUGIN_SOURCE: &str = r#"#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, struct qemu_plugin_tb*));
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb* tb);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb* tb, enum qemu_plugin_op op, void* ptr, uint64_t imm);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, void (*cb)(qemu_plugin_id_t, void*), void* userdata);
static uint64_t grim_count;
static void grim_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &grim_count, qemu_plugin_tb_n_insns(tb));
}
static void grim_at_exit(qemu_plugin_id_t id, void* p) {
  (void)id; (void)p;
  fprintf(stderr, "GRIM-INSNS %llu\n", (unsigned long long)grim_count);
}
__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info, int argc, char** argv) {
  (void)info; (void)argc; (void)argv;
  qemu_plugin_register_vcpu_tb_trans_cb(id, grim_tb_trans);
  qemu_plugin_register_atexit_cb(id, grim_at_exit, NULL);
  return 0;
}
"#;

/// Builds the plugin into `dir`; returns the shared library's path.
pub fn build_plugin(dir: &Path) -> Result<PathBuf, CodegenError> {
    require("cc", "gcc")?;
    let io = |p: &Path| {
        let s = p.display().to_string();
        move |source| CodegenError::Io { path: s, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let src = dir.join("grim_insn_plugin.c");
    std::fs::write(&src, PLUGIN_SOURCE).map_err(io(&src))?;
    let lib = dir.join("libgrim_insn_plugin.so");
    let mut cmd = Command::new("cc");
    cmd.args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&lib)
        .arg(&src);
    let f = run_with_timeout(&mut cmd, Duration::from_secs(60))
        .map_err(io(&src))?
        .ok_or(CodegenError::BuildTimeout(Duration::from_secs(60)))?;
    if f.code != Some(0) {
        return Err(CodegenError::BuildFailed {
            program: "cc".into(),
            status: format!("{:?}", f.code),
            stderr: f.stderr,
        });
    }
    Ok(lib)
}

/// One counting run's fixed arguments.
struct CountJob<'a> {
    bin: &'a Path,
    plugin: &'a Path,
    cpu: &'a str,
    index: usize,
    input: PathBuf,
    output: PathBuf,
    timeout: Duration,
}

fn count_run(job: &CountJob<'_>, number: u64) -> Result<u64, CodegenError> {
    let (bin, timeout) = (job.bin, job.timeout);
    let mut cmd = Command::new("qemu-aarch64");
    cmd.env("OMP_NUM_THREADS", "1")
        .arg("-plugin")
        .arg(job.plugin)
        .arg("-cpu")
        .arg(job.cpu)
        .arg(bin)
        .arg(job.index.to_string())
        .arg(&job.input)
        .arg(&job.output)
        .arg(number.to_string())
        .arg("0")
        .arg("0");
    let f = run_with_timeout(&mut cmd, timeout)
        .map_err(|source| CodegenError::Io {
            path: bin.display().to_string(),
            source,
        })?
        .ok_or(CodegenError::RunTimeout(timeout))?;
    if f.code != Some(0) {
        return Err(CodegenError::RunFailed(format!(
            "exit status {:?}, signal {:?}: {}",
            f.code,
            f.signal,
            f.stderr.trim()
        )));
    }
    f.stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("GRIM-INSNS "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| CodegenError::BadOutput("no GRIM-INSNS line from the qemu plugin".into()))
}

/// The retired aarch64 instructions of one run of candidate `index` of the
/// measurement binary `bin`, under `qemu-aarch64 -cpu CPU` with the plugin `plugin`.
#[allow(clippy::too_many_arguments)]
pub fn kernel_instructions(
    bin: &Path,
    plugin: &Path,
    cpu: &str,
    index: usize,
    f: &Function,
    args: &BTreeMap<String, Tensor>,
    dir: &Path,
    timeout: Duration,
) -> Result<u64, CodegenError> {
    require("qemu-aarch64", "qemu-user")?;
    std::fs::create_dir_all(dir).map_err(|source| CodegenError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let job = CountJob {
        bin,
        plugin,
        cpu,
        index,
        input: dir.join(format!("count-in{index}.bin")),
        output: dir.join(format!("count-out{index}.bin")),
        timeout,
    };
    write_inputs(f, args, &job.input)?;
    let one = count_run(&job, 1)?;
    let two = count_run(&job, 2)?;
    if two < one {
        return Err(CodegenError::BadOutput(format!(
            "instruction counts decreased with more runs ({one} then {two})"
        )));
    }
    Ok(two - one)
}
