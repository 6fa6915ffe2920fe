//! Seed corpora: valid inputs generated from real workloads (printed IR of lowered and
//! scheduled workloads, canonical specs, the shipped rule files, real trace JSON,
//! export lines of real records, real measurement outputs).

use crate::Target;
use tir::rng::SplitMix64;
use tir::workload::Workload;
use tuner::space::SearchSpace;

/// Workload specs the corpora are built from (small, so that replay stays cheap).
pub const SPECS: &[&str] = &[
    "fc:M=8,K=8,N=4",
    "fc:M=24,K=20,N=8,bias=1,act=relu",
    "fc:M=40,K=24,N=3,bias=1,act=tanh,seed=9",
    "bias-add:M=4,N=3",
    "conv2d:C=3,O=8,H=9,W=9,k=3,pad=1,bias=1,act=relu",
    "lstm:hidden=8,input=8,batch=4,seed=6",
    "bcr-fc:M=16,K=16,N=4,block=8x8,sparsity=0.5,seed=1",
    "bcr-fc:M=40,K=36,N=1,block=8x12,sparsity=0.7,seed=2",
    "bcr-fc:M=40,K=24,N=3,bias=1,act=tanh,block=8x8,sparsity=0,seed=9",
    "bcr-conv2d:C=16,O=16,H=6,W=8,k=1,block=8x8,sparsity=0.6,seed=4",
    "bcr-gru:hidden=16,input=12,batch=4,block=8x4,sparsity=0.6,seed=5",
];

/// The workloads the trace and output targets run against (the first few specs).
pub fn workloads() -> Vec<Workload> {
    [SPECS[0], SPECS[6], SPECS[3]]
        .iter()
        .filter_map(|s| Workload::from_spec_str(s).ok())
        .collect()
}

const RULE_FILES: &[&str] = &[
    include_str!("../../tir/rules/algebra.rules"),
    include_str!("../../tir/rules/bcr.rules"),
    include_str!("../../tir/rules/index.rules"),
];

/// Tokens the mutator inserts, per target.
pub fn dictionary(target: Target) -> &'static [&'static str] {
    match target {
        Target::TirText => &[
            "fn ",
            "for ",
            "in ",
            "0..",
            "parallel",
            "vectorized",
            "unrolled",
            "serial",
            "alloc",
            "f32",
            "i32",
            "input",
            "output",
            "weight",
            "[",
            "]",
            "(",
            ")",
            "{",
            "}",
            " = ",
            " + ",
            " * ",
            " / ",
            " % ",
            "min(",
            "max(",
            "select(",
            "-1",
            "4294967296",
            "99999999999999999999",
            "1e39",
            "NaN",
            "inf",
            "0.5",
            "//",
            "\n",
        ],
        Target::Spec => &[
            "fc:",
            "bcr-fc:",
            "conv2d:",
            "bcr-conv2d:",
            "lstm:",
            "bcr-gru:",
            "gru:",
            "bias-add:",
            "M=",
            "K=",
            "N=",
            "C=",
            "O=",
            "H=",
            "W=",
            "k=",
            "pad=",
            "stride=",
            "hidden=",
            "input=",
            "batch=",
            "block=",
            "sparsity=",
            "seed=",
            "bias=",
            "act=",
            "relu",
            "tanh",
            "0",
            "1",
            "-1",
            "0x0",
            "8x8",
            "1.5",
            "NaN",
            "18446744073709551616",
            ",",
            "=",
        ],
        Target::Rules => &[
            "=>",
            "if ",
            "(+ ?a ?b)",
            "(* ?a 0)",
            "(/ ?a ?b)",
            "(% ?a ?b)",
            "(min ?a ?b)",
            "?a",
            "?b",
            "0",
            "1",
            "-1",
            " #",
            "\n",
            ";",
            "(",
            ")",
            "nonneg",
            "const",
            "int",
            "9223372036854775807",
        ],
        Target::TraceJson => &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "null",
            "true",
            "false",
            "-1",
            "0",
            "1e309",
            "18446744073709551616",
            "\"instructions\"",
            "\"split\"",
            "\"factors\"",
            "\"loop\"",
            "\"fuse\"",
            "\"reorder\"",
            "\"unroll\"",
            "\"vectorize\"",
            "\"parallel\"",
            "\"m\"",
            "\"n\"",
            "\"k\"",
            "\\u0000",
            "\\ud800",
        ],
        Target::DbImport => &[
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"",
            "null",
            "-1",
            "0",
            "1e309",
            "\n",
            "\r\n",
            "\"format\"",
            "\"count\"",
            "\"kind\"",
            "\"grim-tuning-log\"",
            "\"result\"",
            "\"trace\"",
            "\"workload\"",
            "\"median_s\"",
            "\"instructions\"",
            "NaN",
            "18446744073709551616",
        ],
        Target::TimingOutput => &[
            "GRIM-TIMING ",
            " ",
            "\n",
            "0",
            "1e-3",
            "-1",
            "NaN",
            "inf",
            "1e309",
            "18446744073709551616",
            "-0",
            "0x10",
            "+5",
        ],
        Target::OutputsFile => &["\0\0\0\0", "\x7f\x7f\x7f\x7f", "\0\0\u{80}\x7f"],
        Target::ModelFile => &[
            "{\"format\":\"grim-model\",\"version\":1,\"model\":",
            "\"layers\":[",
            "\"Bcr\":",
            "\"Dense\":",
            "\"kept_rows\":[",
            "PK\x03\x04",
            "PK\x01\x02",
            "PK\x05\x06",
            "NUMPY",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (",
            "\u{80}\u{2}",
            "torch._utils\n_rebuild_tensor_v2\n",
            "Conv",
            "Gemm",
            "GRU",
        ],
        Target::AdbOutput => &[
            "List of devices attached\n",
            "\tdevice",
            "\toffline",
            "\tunauthorized",
            " device ",
            "usb:1-1 ",
            "model:",
            "product:",
            "transport_id:",
            ":",
            "* daemon started successfully\n",
            "@model\n",
            "@abi\n",
            "@soc\n",
            "@platform\n",
            "@cpuinfo\n",
            "@freq\n",
            "@end\n",
            "@",
            "processor\t: ",
            "CPU part\t: 0x",
            "0xd05",
            "0xffffffff",
            "/sys/devices/system/cpu/cpu",
            "/cpufreq/cpuinfo_max_freq ",
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "-9223372036854775808",
            "\n-9223372036854775808\n",
            "-1",
            "0",
            "GRIM-PID ",
            "GRIM-TIMING ",
            "4294967295",
            "\r\n",
            "\n",
            "\t",
            " ",
            "\u{fffd}",
            "\u{1F600}",
        ],
    }
}

/// The seed corpus of `target`.
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let ws = || SPECS.iter().filter_map(|s| Workload::from_spec_str(s).ok());
    let scheduled = |w: &Workload, n: usize, seed: u64| {
        let space = SearchSpace::for_target(w, false);
        let mut rng = SplitMix64::new(seed);
        (0..n)
            .filter_map(|_| space.apply(w, &space.random(&mut rng)).ok())
            .map(|(s, _)| s)
            .collect::<Vec<_>>()
    };
    let mut out: Vec<Vec<u8>> = match target {
        Target::TirText => {
            let mut v = Vec::new();
            for w in ws() {
                v.push(tir::print_function(&w.func).into_bytes());
                for s in scheduled(&w, 2, 3) {
                    v.push(tir::print_function(s.func()).into_bytes());
                }
            }
            v
        }
        Target::Spec => {
            let mut v: Vec<Vec<u8>> = SPECS.iter().map(|s| s.as_bytes().to_vec()).collect();
            v.extend(ws().map(|w| w.spec.to_string().into_bytes()));
            v
        }
        Target::Rules => {
            let mut v = Vec::new();
            for text in RULE_FILES {
                let lines: Vec<&str> = text.lines().collect();
                for chunk in lines.chunks(12) {
                    v.push(chunk.join("\n").into_bytes());
                }
            }
            v
        }
        Target::TraceJson => {
            let mut v = vec![schedule::Trace::new().to_json().into_bytes()];
            for w in workloads() {
                for s in scheduled(&w, 8, 5) {
                    v.push(s.trace().to_json().into_bytes());
                }
            }
            v
        }
        Target::DbImport => export_lines(),
        Target::TimingOutput => vec![
            b"GRIM-TIMING 1.25e-6 1.1e-6 1.3e-6 2e-8 1000 7\n".to_vec(),
            b"warming up\nGRIM-TIMING 0.002 0.0019 0.0021 0.00005 1 5\n".to_vec(),
            b"GRIM-TIMING 0 0 0 0 1 1".to_vec(),
        ],
        Target::OutputsFile => workloads()
            .iter()
            .filter_map(|w| w.interpret(&w.random_inputs(1)).ok())
            .map(|outs| {
                let mut b = Vec::new();
                for t in outs.values() {
                    if let Some(v) = t.as_f32() {
                        v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes()));
                    }
                }
                b
            })
            .collect(),
        Target::AdbOutput => ADB_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
        Target::ModelFile => model_seeds(),
    };
    out.retain(|s| s.len() <= crate::MAX_INPUT);
    out
}

/// A real export file: measured and failed records of scheduled workloads.
fn export_lines() -> Vec<Vec<u8>> {
    use tuning_logs::{DeviceIdentity, ErrorKind, Failure, Measurement, Outcome, Record};
    let device = DeviceIdentity {
        model: "Pixel 7".into(),
        soc: "Tensor G2".into(),
        abi: "arm64-v8a".into(),
        cores: 8,
        opencl_device: None,
        serial: Some("28051FDH2000ZZ".into()),
    };
    let mut records = Vec::new();
    for (i, w) in workloads().iter().enumerate() {
        let space = SearchSpace::for_target(w, false);
        let mut rng = SplitMix64::new(9);
        for j in 0..3u64 {
            let Ok((s, _)) = space.apply(w, &space.random(&mut rng)) else {
                continue;
            };
            let target = if j % 2 == 0 {
                "aarch64-neon -mcpu=cortex-a76"
            } else {
                "host"
            };
            let Ok(target) = target.parse() else { continue };
            let result = if j == 2 {
                Outcome::Error(Failure {
                    kind: ErrorKind::WrongResult,
                    message: "max abs error 0.5".into(),
                })
            } else {
                Outcome::Measured(Measurement {
                    median_s: 1e-3 * (i as f64 + 1.0),
                    min_s: 9e-4,
                    mean_s: 1e-3,
                    stddev_s: 1e-5,
                    number: 10,
                    repeat: 3,
                    instructions: (j == 0).then_some(12345 + i as u64),
                })
            };
            let mut r = Record::new(
                tuning_logs::WorkloadRef::of(w),
                target,
                device.clone(),
                s.trace().clone(),
                result,
            );
            r.time_unix_ms = 1_700_000_000_000 + j;
            records.push(r);
        }
    }
    let dir = std::env::temp_dir().join(format!("grim-fuzz-corpus-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("log.jsonl");
    let _ = std::fs::remove_file(&path);
    let n = records.len();
    let written = tuning_logs::export::write_file(&path, records.into_iter().map(Ok));
    let text = std::fs::read(&path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        written.is_ok() && !text.is_empty(),
        "writing the export corpus ({n} records) failed: {written:?}"
    );
    // The whole file, and files cut after each line (a truncated download).
    let mut v = vec![text.clone()];
    let mut at = 0;
    for line in text.split(|b| *b == b'\n') {
        at += line.len() + 1;
        if at < text.len() {
            v.push(text[..at].to_vec());
        }
    }
    v
}

/// Real-looking adb and device output: `adb devices` and `adb devices -l` (with the
/// server's start-up messages, offline, unauthorized and no-permission devices, an
/// emulator and a TCP device), identity probes of three kinds of phone and an x86
/// emulator (getprop values, `/proc/cpuinfo`, cpufreq files; one with unreadable
/// frequencies and no `ro.soc.model`), thermal-zone readings, `adb get-state`
/// answers, and a candidate run's output (pid line, timing line, a crash message).
const ADB_SEEDS: &[&str] = &[
    "List of devices attached\n28051FDH2000ZZ\tdevice\n\n",
    "* daemon not running; starting now at tcp:5037\n* daemon started successfully\nList of devices attached\n28051FDH2000ZZ\tdevice\n127.0.0.1:40001\toffline\nR58M42ABCDE\tunauthorized\n\n",
    "List of devices attached\n0123456789ABCDEF\tno permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html]\nemulator-5554\tdevice\n\n",
    "List of devices attached\n28051FDH2000ZZ         device usb:1-1 product:panther model:Pixel_7 device:panther transport_id:1\nR58M42ABCDE            device usb:2-1.4 product:dm1qxxx model:SM_S911B device:dm1q transport_id:2\n127.0.0.1:40001        device product:sdk_gphone64_arm64 model:sdk_gphone64_arm64 device:emu64a transport_id:3\n\n",
    "List of devices attached\n127.0.0.1:40001        offline transport_id:4\nemulator-5554          unauthorized usb:1-2 transport_id:5\r\n\r\n",
    "List of devices attached\n\n",
    "@model\nPixel 7\n@abi\narm64-v8a\n@soc\nTensor G2\n@platform\ngs201\n@cpuinfo\nprocessor\t: 0\nBogoMIPS\t: 49.15\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x2\nCPU part\t: 0xd05\nCPU revision\t: 0\n\nprocessor\t: 1\nBogoMIPS\t: 49.15\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nprocessor\t: 2\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nprocessor\t: 3\nCPU implementer\t: 0x41\nCPU part\t: 0xd05\n\nprocessor\t: 4\nCPU implementer\t: 0x41\nCPU part\t: 0xd41\n\nprocessor\t: 5\nCPU implementer\t: 0x41\nCPU part\t: 0xd41\n\nprocessor\t: 6\nCPU implementer\t: 0x41\nCPU part\t: 0xd44\n\nprocessor\t: 7\nCPU implementer\t: 0x41\nCPU part\t: 0xd44\n\n@freq\n/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq 1803000\n/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq 2348000\n/sys/devices/system/cpu/cpu5/cpufreq/cpuinfo_max_freq 2348000\n/sys/devices/system/cpu/cpu6/cpufreq/cpuinfo_max_freq 2850000\n/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq 2850000\n@end\n",
    "@model\nSM-S911B\n@abi\narm64-v8a\n@soc\nSM8550\n@platform\nkalama\n@cpuinfo\nprocessor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd46\n\nprocessor\t: 1\nCPU part\t: 0xd46\n\nprocessor\t: 2\nCPU part\t: 0xd46\n\nprocessor\t: 3\nCPU part\t: 0xd4d\n\nprocessor\t: 4\nCPU part\t: 0xd4d\n\nprocessor\t: 5\nCPU part\t: 0xd47\n\nprocessor\t: 6\nCPU part\t: 0xd47\n\nprocessor\t: 7\nCPU part\t: 0xd4e\nHardware\t: Qualcomm Technologies, Inc SM8550\n@freq\n/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 2016000\n/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq 2803200\n/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq 3360000\n@end\n",
    "@model\nRedmi Note 8\n@abi\narm64-v8a\n@soc\n\n@platform\ntrinket\n@cpuinfo\nProcessor\t: AArch64 Processor rev 4 (aarch64)\nprocessor\t: 0\nCPU implementer\t: 0x51\nCPU part\t: 0x801\n\nprocessor\t: 1\nCPU part\t: 0x801\n\nprocessor\t: 2\nCPU part\t: 0x804\nHardware\t: Qualcomm Technologies, Inc TRINKET\n@freq\n/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq \n/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq \n@end\n",
    "@model\nsdk_gphone64_x86_64\n@abi\nx86_64\n@soc\n\n@platform\nranchu\n@cpuinfo\nprocessor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i7-10750H CPU @ 2.60GHz\ncpu MHz\t\t: 2591.998\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n@freq\n/sys/devices/system/cpu/cpu[0-9]*/cpufreq/cpuinfo_max_freq \n@end\n",
    "41000\n38500\n52300\n-273000\n",
    "45\n47\n",
    "cat: /sys/class/thermal/thermal_zone12/temp: Invalid argument\n36200\n",
    "device\n",
    "offline\n",
    "error: device '127.0.0.1:40001' not found\n",
    "GRIM-PID 12345\nGRIM-TIMING 1.25e-6 1.1e-6 1.3e-6 2e-8 1000 7\n",
    "GRIM-PID 31337\n",
    "/system/bin/sh: ./kernels: not executable: 64-bit ELF file\n",
    "Segmentation fault \n",
];

/// Seeds of the model-file target: a small grim model file (a BCR conv, an FC and a
/// GRU encoder-decoder), the ONNX fixtures of the model crate, and a small `.npz`.
fn model_seeds() -> Vec<Vec<u8>> {
    use model::graph::{Graph, Node, Op};
    use model::layer::Layer;
    use model::{Body, Model};
    let mut out = Vec::new();
    let layer = |n: &str, s: &str| Layer::from_spec(n, s).ok();
    if let (Some(c), Some(f)) = (
        layer(
            "conv",
            "bcr-conv2d:C=2,O=8,H=4,W=4,kh=3,kw=3,pad=1,bias=true,block=4x6,sparsity=0.5,seed=1",
        ),
        layer("fc", "fc:M=4,K=128,N=1,bias=true,seed=2"),
    ) {
        let node = |name: &str, op: Op, i: &str, o: &str| Node {
            name: name.into(),
            op,
            inputs: vec![i.into()],
            outputs: vec![o.into()],
        };
        let m = Model {
            name: "seed".into(),
            layers: vec![c, f],
            body: Body::Graph(Graph {
                input: "x".into(),
                input_shape: vec![1, 2, 4, 4],
                output: "y".into(),
                nodes: vec![
                    node("c", Op::Conv { layer: 0 }, "x", "a"),
                    node("r", Op::Relu, "a", "b"),
                    node("f", Op::Flatten { axis: 1 }, "b", "d"),
                    node("fc", Op::Fc { layer: 1 }, "d", "y"),
                ],
            }),
        };
        if let Ok(j) = serde_json::to_string(&m) {
            out.push(
                format!("{{\"format\":\"grim-model\",\"version\":1,\"model\":{j}}}").into_bytes(),
            );
        }
        if let Ok(p) = model::onnx::to_proto(&m) {
            out.push(prost::Message::encode_to_vec(&p));
        }
    }
    for f in [
        &include_bytes!("../../model/tests/fixtures/onnx/cnn.onnx")[..],
        &include_bytes!("../../model/tests/fixtures/onnx/rnn.onnx")[..],
        &include_bytes!("../../model/tests/fixtures/onnx/misc.onnx")[..],
    ] {
        out.push(f.to_vec());
    }
    out
}
