//! The device-side OpenCL harness, built with the host `cc` and run natively: it
//! dlopens this machine's OpenCL ICD loader (pocl behind it), runs a GPU schedule and
//! its outputs equal the interpreter's; build failures, oversized work-groups and a
//! missing library are clear errors. Built with `aarch64-linux-gnu-gcc` (dynamic, as it
//! must be to use `dlopen`), it runs under `qemu-aarch64 -L /usr/aarch64-linux-gnu` and
//! reports that no OpenCL library exists there, naming every path it searched.

use codegen::opencl_emit::emit_program;
use codegen::opencl_harness::{
    build_harness, compiler_for_abi, exit, program_file, HarnessError, OpenClInfo, LIBRARY_ENV,
    LIBRARY_PATHS,
};
use codegen::opencl_run::OpenClDevice;
use codegen::run::{max_error, parse_timing, read_outputs, write_inputs};
use codegen::Target;
use schedule::{Remainder, Schedule};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use tir::workload::Workload;
use tir::{ForKind, ParamKind, Tensor};

/// This machine's OpenCL ICD loader.
fn host_library() -> String {
    [
        "/usr/lib/x86_64-linux-gnu/libOpenCL.so.1",
        "/usr/lib/aarch64-linux-gnu/libOpenCL.so.1",
        "/usr/lib64/libOpenCL.so.1",
    ]
    .iter()
    .find(|p| Path::new(p).exists())
    .map(|p| p.to_string())
    .unwrap_or_else(|| "libOpenCL.so.1".into())
}

fn host_harness(dir: &Path) -> PathBuf {
    let (cc, package) = compiler_for_abi(std::env::consts::ARCH).unwrap();
    build_harness(&cc, package, dir, Duration::from_secs(60)).unwrap()
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn harness_runs_a_gpu_schedule_through_the_dlopened_library() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = host_harness(tmp.path());
    let lib = host_library();

    // probe: the same device the opencl3 crate picks.
    let o = run(&bin, &["probe", &lib]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let info = OpenClInfo::parse(&text(&o.stdout)).unwrap();
    let dev = OpenClDevice::open(None).unwrap();
    assert_eq!(info.device, dev.name().trim());
    assert_eq!(info.platform, dev.platform());
    assert!(info.version.starts_with("OpenCL "), "{info:?}");
    assert_eq!(info.library, lib);

    // run: fc split over work-groups and work-items, output equal to the interpreter.
    let w = Workload::from_spec_str("fc:M=24,K=20,N=8,bias=1,act=relu").unwrap();
    let mut s = Schedule::from_workload(&w).unwrap();
    s.bind("init_m", ForKind::BlockX).unwrap();
    s.bind("init_n", ForKind::ThreadX).unwrap();
    s.split("m", &[None, Some(4)], Remainder::Exact).unwrap();
    s.bind("m_0", ForKind::BlockX).unwrap();
    s.bind("m_1", ForKind::ThreadX).unwrap();
    s.bind("n", ForKind::ThreadY).unwrap();
    let f = s.func();
    let p = emit_program(f, "c0", &Target::OpenCl { fp16: false }).unwrap();
    assert!(p.launches.len() > 1);
    let prog = tmp.path().join("c0.grimcl");
    std::fs::write(&prog, program_file(&p)).unwrap();
    let mut args = w.random_inputs(5);
    args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
    let input = tmp.path().join("in.bin");
    write_inputs(f, &args, &input).unwrap();
    let output = tmp.path().join("out.bin");
    let path = |p: &Path| p.display().to_string();
    let o = run(
        &bin,
        &[
            "run",
            &lib,
            &path(&prog),
            &path(&input),
            &path(&output),
            "1",
            "3",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let got = read_outputs(f, &output).unwrap();
    let mut want_args = args.clone();
    for q in f.params.iter().filter(|q| q.kind == ParamKind::Output) {
        want_args
            .entry(q.name.clone())
            .or_insert_with(|| Tensor::zeros(q.dtype, q.shape.clone()));
    }
    tir::interp::run(f, &mut want_args).unwrap();
    let want: BTreeMap<String, Tensor> = want_args
        .into_iter()
        .filter(|(k, _)| f.param(k).is_some_and(|q| q.kind == ParamKind::Output))
        .collect();
    let (_, rel) = max_error(&got, &want).unwrap();
    assert!(rel <= 1e-4, "max rel error {rel}");
    let t = parse_timing(&text(&o.stdout)).unwrap();
    assert_eq!((t.number, t.repeat), (1, 3));
    assert!(t.median > 0.0 && t.min <= t.median);

    // The library can also come from the environment (`-` on the command line).
    let o = Command::new(&bin)
        .args(["probe", "-"])
        .env(LIBRARY_ENV, &lib)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));

    // A kernel the driver cannot compile: exit status 7 with the build log.
    let mut broken = p.clone();
    broken
        .source
        .push_str("\n__kernel void broken(void) { int x = nope; }\n");
    std::fs::write(&prog, program_file(&broken)).unwrap();
    let o = run(
        &bin,
        &[
            "run",
            &lib,
            &path(&prog),
            &path(&input),
            &path(&output),
            "0",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(exit::BUILD_FAILED));
    match HarnessError::from_run(o.status.code(), &text(&o.stderr)) {
        Some(HarnessError::BuildFailed(log)) => assert!(log.contains("nope"), "{log}"),
        other => panic!("{other:?}"),
    }

    // A work-group larger than the device allows: exit status 8, not a crash.
    let mut big = p.clone();
    big.launches[0].global = [1 << 20, 1, 1];
    big.launches[0].local = [1 << 20, 1, 1];
    std::fs::write(&prog, program_file(&big)).unwrap();
    let o = run(
        &bin,
        &[
            "run",
            &lib,
            &path(&prog),
            &path(&input),
            &path(&output),
            "0",
            "1",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(exit::UNSUPPORTED),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stderr).contains("exceeds what the device allows"));

    // A malformed program file and a short input file.
    std::fs::write(&prog, "grim-opencl 1\nfp16 0\nargs x\n").unwrap();
    let o = run(
        &bin,
        &[
            "run",
            &lib,
            &path(&prog),
            &path(&input),
            &path(&output),
            "0",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(exit::BAD_ARGUMENTS));
    assert!(text(&o.stderr).contains("malformed program file near `args x`"));
    std::fs::write(&prog, program_file(&p)).unwrap();
    std::fs::write(&input, [0u8; 12]).unwrap();
    let o = run(
        &bin,
        &[
            "run",
            &lib,
            &path(&prog),
            &path(&input),
            &path(&output),
            "0",
            "1",
        ],
    );
    assert_eq!(o.status.code(), Some(exit::IO));
    assert!(text(&o.stderr).contains("12 bytes"), "{}", text(&o.stderr));
}

#[test]
fn a_missing_library_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = host_harness(tmp.path());
    let o = run(&bin, &["probe", "/nonexistent/libOpenCL.so"]);
    assert_eq!(o.status.code(), Some(exit::NO_LIBRARY));
    let e = HarnessError::from_run(o.status.code(), &text(&o.stderr)).unwrap();
    assert_eq!(
        e.to_string(),
        "no OpenCL library; searched: /nonexistent/libOpenCL.so"
    );
    // A library without OpenCL entry points is skipped with its reason.
    let o = run(&bin, &["probe", "libm.so.6"]);
    assert_eq!(o.status.code(), Some(exit::NO_LIBRARY));
    assert!(text(&o.stderr).contains("does not export clGetPlatformIDs"));
}

#[test]
fn aarch64_build_runs_under_qemu_and_finds_no_library() {
    let tmp = tempfile::tempdir().unwrap();
    let (cc, package) = compiler_for_abi("arm64-v8a").unwrap();
    let bin = build_harness(&cc, package, tmp.path(), Duration::from_secs(60)).unwrap();
    let elf = std::fs::read(&bin).unwrap();
    assert_eq!(
        u16::from_le_bytes([elf[18], elf[19]]),
        183,
        "an aarch64 ELF"
    );
    let o = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&bin)
        .args(["probe", "-"])
        .env_remove(LIBRARY_ENV)
        .output()
        .expect("qemu-aarch64 (Debian qemu-user)");
    assert_eq!(
        o.status.code(),
        Some(exit::NO_LIBRARY),
        "{}",
        text(&o.stderr)
    );
    match HarnessError::from_run(o.status.code(), &text(&o.stderr)) {
        Some(HarnessError::NoLibrary { searched }) => {
            let paths: Vec<&str> = searched.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(paths, LIBRARY_PATHS);
        }
        other => panic!("{other:?}"),
    }
    // A bad command line is exit status 2 with the usage.
    let o = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&bin)
        .arg("nonsense")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(exit::BAD_ARGUMENTS));
    assert!(text(&o.stderr).contains("usage:"));
}
