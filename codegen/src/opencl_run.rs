//! Building and running an [`OpenClProgram`] through an OpenCL driver (`opencl3`,
//! which loads `libOpenCL.so` at run time), and checking it against the interpreter.
//!
//! - [`OpenClDevice::open`] picks a device: the one whose name contains a given
//!   substring (case-insensitive), else the first GPU of any platform, else the first
//!   device. No OpenCL platform is [`CodegenError::MissingTool`] naming
//!   `pocl-opencl-icd` / `ocl-icd-opencl-dev`.
//! - [`run_program`] builds the program (a build failure is
//!   [`CodegenError::BuildFailed`] with the driver's build log), creates one buffer per
//!   argument (parameters from the caller's tensors, outputs that are absent as zeros,
//!   temporaries zero-filled before every run), runs the kernels once and reads the
//!   outputs back, then times `warmup` + `repeat` further runs with profiling events:
//!   one sample is the time from the start of the first kernel to the end of the last
//!   (the zero-fill of temporaries is not counted).
//! - [`check_against_interpreter`] is the one call a command-line tool needs: lower,
//!   build, run, compare with [`tir::interp`], and report errors and timing.
//!
//! Not done here: a watchdog. A kernel that never ends blocks the calling thread
//! (OpenCL has no portable way to cancel a running kernel); run untrusted candidates
//! in a child process with a timeout.

use crate::error::CodegenError;
use crate::opencl_emit::{emit_program, ArgSource, KernelLaunch, OpenClProgram};
use crate::run::{max_error, RunResult, Timing};
use crate::target::Target;
use opencl3::command_queue::{CommandQueue, CL_QUEUE_PROFILING_ENABLE};
use opencl3::context::Context;
use opencl3::device::{Device, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_GPU};
use opencl3::event::Event;
use opencl3::kernel::Kernel;
use opencl3::memory::{Buffer, ClMem, CL_MEM_READ_WRITE};
use opencl3::program::Program;
use opencl3::types::{cl_mem, CL_BLOCKING};
use std::collections::BTreeMap;
use tir::{Function, ParamKind, Tensor};

fn cl_err(what: &str) -> impl Fn(opencl3::error_codes::ClError) -> CodegenError + '_ {
    move |e| CodegenError::RunFailed(format!("OpenCL {what}: {e}"))
}

fn missing_platform(detail: &str) -> CodegenError {
    CodegenError::MissingTool {
        program: format!("an OpenCL platform ({detail})"),
        package: "pocl-opencl-icd (a CPU OpenCL device) and ocl-icd-opencl-dev".into(),
    }
}

/// An opened OpenCL device with its context and profiling queue.
pub struct OpenClDevice {
    device: Device,
    context: Context,
    queue: CommandQueue,
    name: String,
    platform: String,
    extensions: String,
}

impl std::fmt::Debug for OpenClDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClDevice")
            .field("name", &self.name)
            .field("platform", &self.platform)
            .finish()
    }
}

impl OpenClDevice {
    /// Opens a device: the first whose name contains `name_contains`
    /// (case-insensitive), or when `None` the first GPU, else the first device.
    pub fn open(name_contains: Option<&str>) -> Result<OpenClDevice, CodegenError> {
        let platforms =
            opencl3::platform::get_platforms().map_err(|e| missing_platform(&e.to_string()))?;
        if platforms.is_empty() {
            return Err(missing_platform("none installed"));
        }
        let mut all: Vec<(String, Device)> = Vec::new();
        for p in &platforms {
            let pname = p.name().unwrap_or_else(|_| "?".into());
            // A platform without devices answers with an error: skip it.
            for id in p.get_devices(CL_DEVICE_TYPE_ALL).unwrap_or_default() {
                all.push((pname.clone(), Device::new(id)));
            }
        }
        if all.is_empty() {
            return Err(missing_platform("platforms found, but no device"));
        }
        let pick = match name_contains {
            Some(want) => {
                let want_l = want.to_lowercase();
                all.iter()
                    .find(|(_, d)| {
                        d.name()
                            .map(|n| n.to_lowercase().contains(&want_l))
                            .unwrap_or(false)
                    })
                    .ok_or_else(|| {
                        let names: Vec<String> = all
                            .iter()
                            .map(|(p, d)| format!("{} ({p})", d.name().unwrap_or_default()))
                            .collect();
                        CodegenError::BadArgument {
                            name: "device".into(),
                            reason: format!(
                                "no OpenCL device name contains `{want}`; available: {}",
                                names.join(", ")
                            ),
                        }
                    })?
            }
            None => all
                .iter()
                .find(|(_, d)| {
                    d.dev_type()
                        .map(|t| t & CL_DEVICE_TYPE_GPU != 0)
                        .unwrap_or(false)
                })
                .unwrap_or(&all[0]),
        };
        let (platform, device) = (pick.0.clone(), Device::new(pick.1.id()));
        let name = device.name().map_err(cl_err("device name"))?;
        let extensions = device.extensions().unwrap_or_default();
        let context = Context::from_device(&device).map_err(cl_err("create context"))?;
        #[allow(deprecated)]
        let queue = CommandQueue::create_default(&context, CL_QUEUE_PROFILING_ENABLE)
            .map_err(cl_err("create command queue"))?;
        Ok(OpenClDevice {
            device,
            context,
            queue,
            name,
            platform,
            extensions,
        })
    }

    /// The device's name (for pocl: `pthread-<cpu>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The platform's name.
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// True when the device has `cl_khr_fp16` (needed by `opencl:fp16` kernels).
    pub fn has_fp16(&self) -> bool {
        self.extensions
            .split_whitespace()
            .any(|e| e == "cl_khr_fp16")
    }
}

/// How many runs to time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenClProtocol {
    /// Untimed runs after the checked one.
    pub warmup: u32,
    /// Timed runs (at least 1).
    pub repeat: u32,
}

impl Default for OpenClProtocol {
    fn default() -> Self {
        OpenClProtocol {
            warmup: 2,
            repeat: 5,
        }
    }
}

fn stats(samples: &[f64]) -> Timing {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let n = s.len().max(1) as f64;
    let mean = s.iter().sum::<f64>() / n;
    let median = if s.is_empty() {
        0.0
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    let var = if s.len() > 1 {
        s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Timing {
        median,
        min: s.first().copied().unwrap_or(0.0),
        mean,
        stddev: var.sqrt(),
        number: 1,
        repeat: s.len() as u64,
        threads: None,
    }
}

/// Builds `program` on `device` and runs it on `args` (see the module docs);
/// `f` is the function it was lowered from (for the output shapes).
pub fn run_program(
    device: &OpenClDevice,
    program: &OpenClProgram,
    f: &Function,
    args: &BTreeMap<String, Tensor>,
    protocol: &OpenClProtocol,
) -> Result<RunResult, CodegenError> {
    if program.fp16 && !device.has_fp16() {
        return Err(CodegenError::Unsupported {
            loop_name: program.function.clone(),
            reason: format!(
                "an `opencl:fp16` kernel needs cl_khr_fp16, which device `{}` does not have",
                device.name
            ),
        });
    }
    // Check the arguments before touching the device.
    let mut host: Vec<Option<Vec<u8>>> = Vec::new();
    for a in &program.args {
        match (&a.source, args.get(&a.name)) {
            (ArgSource::Temporary, _) => host.push(None),
            (ArgSource::Param(kind), t) => {
                let p = f.param(&a.name).ok_or_else(|| CodegenError::BadArgument {
                    name: a.name.clone(),
                    reason: "not a parameter of the function".into(),
                })?;
                match t {
                    Some(t) => {
                        if t.shape() != p.shape.as_slice() || t.dtype() != p.dtype {
                            return Err(CodegenError::BadArgument {
                                name: a.name.clone(),
                                reason: format!(
                                    "expected {} {:?}, got {} {:?}",
                                    p.dtype,
                                    p.shape,
                                    t.dtype(),
                                    t.shape()
                                ),
                            });
                        }
                        host.push(Some(t.to_le_bytes()));
                    }
                    None if *kind == ParamKind::Output => {
                        host.push(Some(vec![0u8; a.dtype.size_bytes() * a.len]))
                    }
                    None => {
                        return Err(CodegenError::BadArgument {
                            name: a.name.clone(),
                            reason: "missing".into(),
                        })
                    }
                }
            }
        }
    }
    // Build.
    let mut prog = Program::create_from_source(&device.context, &program.source)
        .map_err(cl_err("create program"))?;
    if let Err(e) = prog.build(&[device.device.id()], "") {
        let log = prog
            .get_build_log(device.device.id())
            .unwrap_or_else(|_| "(no build log)".into());
        return Err(CodegenError::BuildFailed {
            program: format!("OpenCL compiler of `{}`", device.name),
            status: e.to_string(),
            stderr: log,
        });
    }
    // Buffers.
    let mut buffers: Vec<Buffer<u8>> = Vec::new();
    for (a, h) in program.args.iter().zip(&host) {
        let size = (a.dtype.size_bytes() * a.len).max(4);
        // SAFETY: no host pointer is passed; the buffer is `size` bytes.
        let mut b = unsafe {
            Buffer::<u8>::create(
                &device.context,
                CL_MEM_READ_WRITE,
                size,
                std::ptr::null_mut(),
            )
        }
        .map_err(cl_err("create buffer"))?;
        if let Some(h) = h {
            if !h.is_empty() {
                // SAFETY: blocking write of `h` (at most `size` bytes) into `b`.
                unsafe {
                    device
                        .queue
                        .enqueue_write_buffer(&mut b, CL_BLOCKING, 0, h, &[])
                }
                .map_err(cl_err(&format!("write buffer `{}`", a.name)))?;
            }
        }
        buffers.push(b);
    }
    // Kernels, with their arguments set once.
    let max_wg = device.device.max_work_group_size().unwrap_or(usize::MAX);
    let max_items = device.device.max_work_item_sizes().unwrap_or_default();
    let mut kernels: Vec<(Kernel, &KernelLaunch)> = Vec::new();
    for l in &program.launches {
        let k = Kernel::create(&prog, &l.name)
            .map_err(cl_err(&format!("create kernel `{}`", l.name)))?;
        for (i, b) in buffers.iter().enumerate() {
            let mem: cl_mem = b.get();
            // SAFETY: argument i of every generated kernel is a `__global` pointer.
            unsafe { k.set_arg(i as u32, &mem) }.map_err(cl_err("set kernel argument"))?;
        }
        let wg: usize = l.local.iter().product();
        let kmax = k.get_work_group_size(device.device.id()).unwrap_or(max_wg);
        let too_big =
            wg > kmax.min(max_wg) || l.local.iter().zip(&max_items).any(|(want, max)| want > max);
        if too_big {
            return Err(CodegenError::Unsupported {
                loop_name: l.name.clone(),
                reason: format!(
                    "work-group size {:?} ({wg} work-items) exceeds what `{}` allows for this kernel ({} work-items, {:?} per axis)",
                    l.local,
                    device.name,
                    kmax.min(max_wg),
                    max_items
                ),
            });
        }
        kernels.push((k, l));
    }
    let temps: Vec<usize> = program
        .args
        .iter()
        .enumerate()
        .filter(|(_, a)| a.source == ArgSource::Temporary)
        .map(|(i, _)| i)
        .collect();
    let run_once = |buffers: &mut Vec<Buffer<u8>>| -> Result<f64, CodegenError> {
        for &i in &temps {
            let size = (program.args[i].dtype.size_bytes() * program.args[i].len).max(4);
            // SAFETY: fills the whole buffer with zero bytes.
            unsafe {
                device
                    .queue
                    .enqueue_fill_buffer(&mut buffers[i], &[0u8], 0, size, &[])
            }
            .map_err(cl_err("zero-fill temporary"))?;
        }
        let mut events: Vec<Event> = Vec::new();
        for (k, l) in &kernels {
            // SAFETY: every argument is set; sizes are three-element arrays.
            let ev = unsafe {
                device.queue.enqueue_nd_range_kernel(
                    k.get(),
                    3,
                    std::ptr::null(),
                    l.global.as_ptr(),
                    l.local.as_ptr(),
                    &[],
                )
            }
            .map_err(cl_err(&format!("enqueue kernel `{}`", l.name)))?;
            events.push(ev);
        }
        device.queue.finish().map_err(cl_err("finish"))?;
        match (events.first(), events.last()) {
            (Some(a), Some(b)) => {
                let start = a.profiling_command_start().map_err(cl_err("profiling"))?;
                let end = b.profiling_command_end().map_err(cl_err("profiling"))?;
                Ok(end.saturating_sub(start) as f64 * 1e-9)
            }
            _ => Ok(0.0),
        }
    };
    run_once(&mut buffers)?;
    let mut outputs = BTreeMap::new();
    for (a, b) in program.args.iter().zip(&buffers) {
        if a.source != ArgSource::Param(ParamKind::Output) {
            continue;
        }
        let mut bytes = vec![0u8; a.dtype.size_bytes() * a.len];
        if !bytes.is_empty() {
            // SAFETY: blocking read of exactly the buffer's payload.
            unsafe {
                device
                    .queue
                    .enqueue_read_buffer(b, CL_BLOCKING, 0, &mut bytes, &[])
            }
            .map_err(cl_err(&format!("read buffer `{}`", a.name)))?;
        }
        let shape = f
            .param(&a.name)
            .map(|p| p.shape.clone())
            .unwrap_or_default();
        let t = Tensor::from_le_bytes(a.dtype, shape, &bytes)
            .map_err(|e| CodegenError::BadOutput(e.to_string()))?;
        outputs.insert(a.name.clone(), t);
    }
    for _ in 0..protocol.warmup {
        run_once(&mut buffers)?;
    }
    let mut samples = Vec::new();
    for _ in 0..protocol.repeat.max(1) {
        samples.push(run_once(&mut buffers)?);
    }
    Ok(RunResult {
        outputs,
        timing: stats(&samples),
    })
}

/// The outcome of [`check_against_interpreter`].
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The device the kernels ran on.
    pub device: String,
    /// Largest absolute difference from the interpreter.
    pub max_abs: f64,
    /// Largest relative difference (relative to `max(|want|, 1)`).
    pub max_rel: f64,
    /// True when `max_rel <= tolerance` (and names and shapes agree).
    pub passed: bool,
    /// Kernel time.
    pub timing: Timing,
    /// The kernels and their NDRanges.
    pub launches: Vec<KernelLaunch>,
    /// The generated OpenCL C.
    pub source: String,
}

/// Lowers the scheduled function `f` for `target` (an `opencl` target), runs it on
/// `device` with `args` (inputs and weights; outputs may be absent), runs
/// [`tir::interp`] on the same arguments, and compares the outputs.
///
/// A wrong result is not an error: it is `passed == false` in the report, with the
/// errors. Errors are codegen (unsupported schedule), build (with the log), device
/// and argument failures. Intended for the `grim-tune build/check` commands:
///
/// ```no_run
/// # use codegen::opencl_run::*;
/// # fn demo(f: &tir::Function, args: &std::collections::BTreeMap<String, tir::Tensor>)
/// # -> Result<(), codegen::CodegenError> {
/// let dev = OpenClDevice::open(None)?; // or Some("pthread"), Some("Mali"), ...
/// let target: codegen::Target = "opencl".parse().expect("valid target");
/// let r = check_against_interpreter(f, args, &target, &dev, 1e-4, &OpenClProtocol::default())?;
/// println!("{}: rel err {:.2e}, median {:.3e} s", r.device, r.max_rel, r.timing.median);
/// # Ok(()) }
/// ```
pub fn check_against_interpreter(
    f: &Function,
    args: &BTreeMap<String, Tensor>,
    target: &Target,
    device: &OpenClDevice,
    tolerance: f64,
    protocol: &OpenClProtocol,
) -> Result<CheckReport, CodegenError> {
    let kname: String = f
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let program = emit_program(f, if kname.is_empty() { "f" } else { &kname }, target)?;
    let got = run_program(device, &program, f, args, protocol)?;
    let mut iargs = args.clone();
    for p in f.params.iter().filter(|p| p.kind == ParamKind::Output) {
        iargs
            .entry(p.name.clone())
            .or_insert_with(|| Tensor::zeros(p.dtype, p.shape.clone()));
    }
    tir::interp::run(f, &mut iargs)
        .map_err(|e| CodegenError::RunFailed(format!("interpreter: {e}")))?;
    let want: BTreeMap<String, Tensor> = iargs
        .into_iter()
        .filter(|(k, _)| f.param(k).is_some_and(|p| p.kind == ParamKind::Output))
        .collect();
    let (max_abs, max_rel, same) = match max_error(&got.outputs, &want) {
        Some((a, r)) => (a, r, true),
        None => (f64::INFINITY, f64::INFINITY, false),
    };
    Ok(CheckReport {
        device: device.name.clone(),
        max_abs,
        max_rel,
        passed: same && max_rel <= tolerance,
        timing: got.timing,
        launches: program.launches,
        source: program.source,
    })
}
