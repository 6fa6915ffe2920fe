//! The device-side OpenCL measurement harness: a small C program that runs one
//! generated OpenCL program on a phone (or any Linux device) and times it, the OpenCL
//! counterpart of [`crate::harness`].
//!
//! It is **not linked against OpenCL**: phones ship their driver as a vendor library
//! (`/vendor/lib64/libOpenCL.so`, Mali's `libGLES_mali.so`, ...) and no SDK, so the
//! harness `dlopen()`s the library at run time, resolves the few `cl*` entry points it
//! needs with `dlsym()`, and declares the OpenCL types and constants itself. The library
//! is the one named on the command line, else the one in the environment variable
//! [`LIBRARY_ENV`], else the first of [`LIBRARY_PATHS`] that loads and exports
//! `clGetPlatformIDs`.
//!
//! Since it uses `dlopen`, the harness is a dynamic executable (`-ldl`), unlike the
//! static CPU measurement binaries: it must be built by a compiler for the device's C
//! library. [`compiler_for_abi`] picks Debian's `aarch64-linux-gnu-gcc` for
//! `arm64-v8a` (glibc: runs on ARM Linux boards, and under `qemu-aarch64 -L`) and the
//! host `cc` for `x86_64` (an emulator); an Android phone needs a bionic compiler
//! (the NDK's `aarch64-linux-android<API>-clang`), passed in its place.
//!
//! # Command line
//! - `HARNESS probe LIB`: loads the library, picks the device (the first GPU of any
//!   platform, else the first device), prints its identity (see [`OpenClInfo`]).
//! - `HARNESS run LIB PROGRAM INPUT OUTPUT WARMUP REPEAT`: also builds and runs the
//!   program file `PROGRAM` (see [`program_file`]) on the parameters in `INPUT` (every
//!   parameter of the function in order, raw little-endian, as
//!   [`crate::run::write_inputs`] writes them), writes the output parameters of the
//!   first run to `OUTPUT` (as [`crate::run::read_outputs`] reads them), then times
//!   `WARMUP` untimed and `REPEAT` timed runs with profiling events (one sample: from
//!   the start of the first kernel to the end of the last; temporaries are zero-filled
//!   before every run, untimed) and prints `GRIM-TIMING median min mean stddev 1
//!   REPEAT` (seconds, as [`crate::run::parse_timing`] reads it).
//!
//! `LIB` is `-` to search. Exit statuses are in [`exit`]; [`HarnessError::from_run`]
//! turns a failed run into a clear error.

use crate::error::CodegenError;
use crate::opencl_emit::{ArgSource, OpenClProgram};
use crate::toolchain::{require, run_with_timeout};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tir::ParamKind;

/// Where the harness looks for the OpenCL library, in order: the vendor paths of
/// Android phones (Qualcomm Adreno, ARM Mali, Imagination PowerVR), then the dynamic
/// linker's own search (`libOpenCL.so`, as on Linux boards with an ICD loader).
pub const LIBRARY_PATHS: &[&str] = &[
    "/vendor/lib64/libOpenCL.so",
    "/system/vendor/lib64/libOpenCL.so",
    "/system/lib64/libOpenCL.so",
    "/vendor/lib64/egl/libGLES_mali.so",
    "/system/vendor/lib64/egl/libGLES_mali.so",
    "/vendor/lib64/libGLES_mali.so",
    "/system/lib64/egl/libGLES_mali.so",
    "/vendor/lib64/libPVROCL.so",
    "/system/vendor/lib64/libPVROCL.so",
    "libOpenCL.so",
    "libOpenCL.so.1",
];

/// The environment variable naming the OpenCL library on the device (used when the
/// command line says `-`).
pub const LIBRARY_ENV: &str = "GRIM_OPENCL_LIB";

/// The harness's exit statuses.
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// Bad command line or malformed program file.
    pub const BAD_ARGUMENTS: i32 = 2;
    /// A file could not be read or written.
    pub const IO: i32 = 3;
    /// No OpenCL library could be loaded (stderr: one `GRIM-NO-OPENCL PATH: WHY` line
    /// per library tried), or it lacks an entry point.
    pub const NO_LIBRARY: i32 = 5;
    /// The library loaded, but has no platform or no device.
    pub const NO_DEVICE: i32 = 6;
    /// The driver's compiler rejected the program (stderr: the build log).
    pub const BUILD_FAILED: i32 = 7;
    /// The device cannot run the program as launched (work-group too large, no fp16).
    pub const UNSUPPORTED: i32 = 8;
    /// An OpenCL call failed while running.
    pub const RUN_FAILED: i32 = 9;
}

/// What the harness reports about the OpenCL device it uses (`GRIM-OPENCL-*` lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenClInfo {
    /// The library it loaded.
    pub library: String,
    /// `CL_PLATFORM_NAME`.
    pub platform: String,
    /// `CL_DEVICE_NAME` (`Mali-G710`, `QUALCOMM Adreno(TM)`, pocl's `cpu-...`).
    pub device: String,
    /// `CL_DEVICE_VERSION` (`OpenCL 3.0 v1.r38p1`).
    pub version: String,
    /// `CL_DRIVER_VERSION`.
    pub driver: String,
}

impl OpenClInfo {
    /// Parses the `GRIM-OPENCL-*` lines of the harness's standard output; `None` when
    /// the device line is missing or empty.
    pub fn parse(stdout: &str) -> Option<OpenClInfo> {
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(' ')))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let info = OpenClInfo {
            library: field("GRIM-OPENCL-LIBRARY"),
            platform: field("GRIM-OPENCL-PLATFORM"),
            device: field("GRIM-OPENCL-DEVICE"),
            version: field("GRIM-OPENCL-VERSION"),
            driver: field("GRIM-OPENCL-DRIVER"),
        };
        (!info.device.is_empty()).then_some(info)
    }

    /// One line for people: `DEVICE (PLATFORM; VERSION; driver DRIVER; LIBRARY)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}; {}; driver {}; {})",
            self.device, self.platform, self.version, self.driver, self.library
        )
    }
}

/// Why a harness run failed, from its exit status and standard error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HarnessError {
    /// No OpenCL library could be loaded.
    #[error("no OpenCL library; searched: {}", searched.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", "))]
    NoLibrary {
        /// Each library tried, with the loader's reason.
        searched: Vec<(String, String)>,
    },
    /// The library loaded but offers no usable device.
    #[error("no usable OpenCL device: {0}")]
    NoDevice(String),
    /// The driver's compiler rejected the program.
    #[error("OpenCL build failed:\n{0}")]
    BuildFailed(String),
    /// The device cannot run the program as launched.
    #[error("{0}")]
    Unsupported(String),
    /// Anything else (bad arguments, I/O, a failed OpenCL call, a signal).
    #[error("{0}")]
    Failed(String),
}

impl HarnessError {
    /// Classifies a finished run: `code` is its exit status (`None` when killed by a
    /// signal), `stderr` what it printed. `None` for a successful run.
    pub fn from_run(code: Option<i32>, stderr: &str) -> Option<HarnessError> {
        let text = stderr.trim().to_string();
        Some(match code {
            Some(exit::OK) => return None,
            Some(exit::NO_LIBRARY) => {
                let searched: Vec<(String, String)> = stderr
                    .lines()
                    .filter_map(|l| l.strip_prefix("GRIM-NO-OPENCL "))
                    .map(|r| match r.split_once(": ") {
                        Some((p, why)) => (p.to_string(), why.to_string()),
                        None => (r.to_string(), String::new()),
                    })
                    .collect();
                if searched.is_empty() {
                    HarnessError::Failed(text)
                } else {
                    HarnessError::NoLibrary { searched }
                }
            }
            Some(exit::NO_DEVICE) => HarnessError::NoDevice(text),
            Some(exit::BUILD_FAILED) => HarnessError::BuildFailed(text),
            Some(exit::UNSUPPORTED) => HarnessError::Unsupported(text),
            Some(c) => HarnessError::Failed(format!("exit status {c}: {text}")),
            None => HarnessError::Failed(format!("killed by a signal: {text}")),
        })
    }
}

/// The program file the harness runs: a header describing the buffers and launches,
/// then the OpenCL C source.
///
/// ```text
/// grim-opencl 1
/// fp16 0
/// args 3
/// arg in 1024        (a parameter read from INPUT: input or weight)
/// arg out 64         (an output parameter: read from INPUT, written to OUTPUT)
/// arg tmp 16         (a temporary, zero-filled before every run)
/// launches 1
/// launch grim_kernel_c0 64 1 1 16 1 1     (name, global size, local size)
/// source
/// ...OpenCL C...
/// ```
pub fn program_file(p: &OpenClProgram) -> String {
    let mut s = format!(
        "grim-opencl 1\nfp16 {}\nargs {}\n",
        u8::from(p.fp16),
        p.args.len()
    );
    for a in &p.args {
        let kind = match a.source {
            ArgSource::Param(ParamKind::Output) => "out",
            ArgSource::Param(_) => "in",
            ArgSource::Temporary => "tmp",
        };
        let _ = writeln!(s, "arg {kind} {}", a.len);
    }
    let _ = writeln!(s, "launches {}", p.launches.len());
    for l in &p.launches {
        let _ = writeln!(
            s,
            "launch {} {} {} {} {} {} {}",
            l.name, l.global[0], l.global[1], l.global[2], l.local[0], l.local[1], l.local[2]
        );
    }
    s.push_str("source\n");
    s.push_str(&p.source);
    s
}

/// The compiler (and the Debian package that has it) for a device's ABI
/// (`ro.product.cpu.abi`): `aarch64-linux-gnu-gcc` for `arm64-v8a`, the host `cc` for
/// `x86_64` on an x86-64 host. Other ABIs are [`CodegenError::Unsupported`].
pub fn compiler_for_abi(abi: &str) -> Result<(String, &'static str), CodegenError> {
    match abi {
        "arm64-v8a" | "aarch64" | "arm64" => Ok((
            "aarch64-linux-gnu-gcc".into(),
            "gcc-aarch64-linux-gnu (and libc6-dev-arm64-cross)",
        )),
        "x86_64" if cfg!(target_arch = "x86_64") => Ok(("cc".into(), "gcc")),
        "x86_64" => Ok(("x86_64-linux-gnu-gcc".into(), "gcc-x86-64-linux-gnu")),
        other => Err(CodegenError::Unsupported {
            loop_name: "-".into(),
            reason: format!(
                "no compiler known for device ABI `{other}` (known: arm64-v8a, x86_64); pass one for the device's C library"
            ),
        }),
    }
}

/// Writes [`harness_source`] to `dir/grim-opencl.c` and compiles it with `cc`
/// (dynamic, `-ldl -lm`) into `dir/grim-opencl`; returns the executable's path.
/// `package` names what to install when `cc` is missing.
pub fn build_harness(
    cc: &str,
    package: &str,
    dir: &Path,
    limit: Duration,
) -> Result<PathBuf, CodegenError> {
    require(cc, package)?;
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| CodegenError::Io { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let src = dir.join("grim-opencl.c");
    std::fs::write(&src, harness_source()).map_err(io(&src))?;
    let bin = dir.join("grim-opencl");
    let mut cmd = Command::new(cc);
    cmd.args(["-O2", "-Wall", "-Werror", "-o"])
        .arg(&bin)
        .arg(&src)
        .args(["-ldl", "-lm"]);
    match run_with_timeout(&mut cmd, limit).map_err(io(Path::new(cc)))? {
        None => Err(CodegenError::BuildTimeout(limit)),
        Some(f) if f.code == Some(0) => Ok(bin),
        Some(f) => Err(CodegenError::BuildFailed {
            program: cc.into(),
            status: format!("{:?}", f.code),
            stderr: f.stderr,
        }),
    }
}

fn c_string(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => o.push(c),
            c => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    let _ = write!(o, "\\{byte:03o}");
                }
            }
        }
    }
    o.push('"');
    o
}

/// The harness's C source (see the module docs), with [`LIBRARY_PATHS`] built in.
pub fn harness_source() -> String {
    let mut paths = String::new();
    for p in LIBRARY_PATHS {
        let _ = writeln!(paths, "  {},", c_string(p));
    }
    HARNESS
        .replace("/*GRIM-PATHS*/\n", &paths)
        .replace("/*GRIM-ENV*/", &c_string(LIBRARY_ENV))
}

const HARNESS: &str = r#"/* grim's device-side OpenCL measurement harness (generated by
 * codegen::opencl_harness; see its documentation for the command line). It loads the
 * device's OpenCL library with dlopen() and declares the few OpenCL types it needs. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef cl_uint cl_bool;
typedef intptr_t cl_context_properties;
typedef struct _cl_platform_id* cl_platform_id;
typedef struct _cl_device_id* cl_device_id;
typedef struct _cl_context* cl_context;
typedef struct _cl_command_queue* cl_command_queue;
typedef struct _cl_mem* cl_mem;
typedef struct _cl_program* cl_program;
typedef struct _cl_kernel* cl_kernel;
typedef struct _cl_event* cl_event;

#define CL_SUCCESS 0
#define CL_TRUE 1
#define CL_PLATFORM_NAME 0x0902
#define CL_DEVICE_TYPE_GPU (1 << 2)
#define CL_DEVICE_TYPE_ALL 0xFFFFFFFF
#define CL_DEVICE_TYPE 0x1000
#define CL_DEVICE_MAX_WORK_GROUP_SIZE 0x1004
#define CL_DEVICE_MAX_WORK_ITEM_SIZES 0x1005
#define CL_DEVICE_NAME 0x102B
#define CL_DRIVER_VERSION 0x102D
#define CL_DEVICE_VERSION 0x102F
#define CL_DEVICE_EXTENSIONS 0x1030
#define CL_CONTEXT_PLATFORM 0x1084
#define CL_QUEUE_PROFILING_ENABLE (1 << 1)
#define CL_MEM_READ_WRITE (1 << 0)
#define CL_PROGRAM_BUILD_LOG 0x1183
#define CL_KERNEL_WORK_GROUP_SIZE 0x11B0
#define CL_PROFILING_COMMAND_START 0x1282
#define CL_PROFILING_COMMAND_END 0x1283

static struct {
  cl_int (*GetPlatformIDs)(cl_uint, cl_platform_id*, cl_uint*);
  cl_int (*GetPlatformInfo)(cl_platform_id, cl_uint, size_t, void*, size_t*);
  cl_int (*GetDeviceIDs)(cl_platform_id, cl_bitfield, cl_uint, cl_device_id*, cl_uint*);
  cl_int (*GetDeviceInfo)(cl_device_id, cl_uint, size_t, void*, size_t*);
  cl_context (*CreateContext)(const cl_context_properties*, cl_uint, const cl_device_id*,
                              void (*)(const char*, const void*, size_t, void*), void*, cl_int*);
  cl_command_queue (*CreateCommandQueue)(cl_context, cl_device_id, cl_bitfield, cl_int*);
  cl_program (*CreateProgramWithSource)(cl_context, cl_uint, const char**, const size_t*, cl_int*);
  cl_int (*BuildProgram)(cl_program, cl_uint, const cl_device_id*, const char*,
                         void (*)(cl_program, void*), void*);
  cl_int (*GetProgramBuildInfo)(cl_program, cl_device_id, cl_uint, size_t, void*, size_t*);
  cl_kernel (*CreateKernel)(cl_program, const char*, cl_int*);
  cl_int (*SetKernelArg)(cl_kernel, cl_uint, size_t, const void*);
  cl_int (*GetKernelWorkGroupInfo)(cl_kernel, cl_device_id, cl_uint, size_t, void*, size_t*);
  cl_mem (*CreateBuffer)(cl_context, cl_bitfield, size_t, void*, cl_int*);
  cl_int (*EnqueueWriteBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, const void*,
                               cl_uint, const cl_event*, cl_event*);
  cl_int (*EnqueueReadBuffer)(cl_command_queue, cl_mem, cl_bool, size_t, size_t, void*,
                              cl_uint, const cl_event*, cl_event*);
  cl_int (*EnqueueNDRangeKernel)(cl_command_queue, cl_kernel, cl_uint, const size_t*,
                                 const size_t*, const size_t*, cl_uint, const cl_event*, cl_event*);
  cl_int (*Finish)(cl_command_queue);
  cl_int (*GetEventProfilingInfo)(cl_event, cl_uint, size_t, void*, size_t*);
  cl_int (*ReleaseEvent)(cl_event);
} cl;

static const struct { const char* name; void** slot; } grim_symbols[] = {
  {"clGetPlatformIDs", (void**)&cl.GetPlatformIDs},
  {"clGetPlatformInfo", (void**)&cl.GetPlatformInfo},
  {"clGetDeviceIDs", (void**)&cl.GetDeviceIDs},
  {"clGetDeviceInfo", (void**)&cl.GetDeviceInfo},
  {"clCreateContext", (void**)&cl.CreateContext},
  {"clCreateCommandQueue", (void**)&cl.CreateCommandQueue},
  {"clCreateProgramWithSource", (void**)&cl.CreateProgramWithSource},
  {"clBuildProgram", (void**)&cl.BuildProgram},
  {"clGetProgramBuildInfo", (void**)&cl.GetProgramBuildInfo},
  {"clCreateKernel", (void**)&cl.CreateKernel},
  {"clSetKernelArg", (void**)&cl.SetKernelArg},
  {"clGetKernelWorkGroupInfo", (void**)&cl.GetKernelWorkGroupInfo},
  {"clCreateBuffer", (void**)&cl.CreateBuffer},
  {"clEnqueueWriteBuffer", (void**)&cl.EnqueueWriteBuffer},
  {"clEnqueueReadBuffer", (void**)&cl.EnqueueReadBuffer},
  {"clEnqueueNDRangeKernel", (void**)&cl.EnqueueNDRangeKernel},
  {"clFinish", (void**)&cl.Finish},
  {"clGetEventProfilingInfo", (void**)&cl.GetEventProfilingInfo},
  {"clReleaseEvent", (void**)&cl.ReleaseEvent},
};

static const char* grim_paths[] = {
/*GRIM-PATHS*/
  0
};

/* Why each library failed, printed only when none loads. */
static char grim_why[8192];

static void grim_note(const char* path, const char* why) {
  size_t n = strlen(grim_why);
  snprintf(grim_why + n, sizeof grim_why - n, "GRIM-NO-OPENCL %s: %s\n", path,
           why ? why : "cannot be loaded");
}

/* Loads `path` and checks it exports clGetPlatformIDs; NULL (and a note) otherwise. */
static void* grim_try(const char* path) {
  void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    /* dlerror() often repeats the path: keep only its reason. */
    const char* reason = e ? strstr(e, ": ") : 0;
    grim_note(path, reason && strncmp(e, path, strlen(path)) == 0 ? reason + 2 : e);
    return 0;
  }
  if (!dlsym(h, "clGetPlatformIDs")) {
    grim_note(path, "loads, but does not export clGetPlatformIDs");
    dlclose(h);
    return 0;
  }
  return h;
}

static const char* grim_library;

static int grim_load(const char* lib) {
  void* h = 0;
  if (lib && *lib) {
    h = grim_try(lib);
    grim_library = lib;
  } else {
    for (int i = 0; grim_paths[i] && !h; ++i) {
      h = grim_try(grim_paths[i]);
      grim_library = grim_paths[i];
    }
  }
  if (!h) {
    fputs(grim_why, stderr);
    return 5;
  }
  for (size_t i = 0; i < sizeof grim_symbols / sizeof grim_symbols[0]; ++i) {
    *grim_symbols[i].slot = dlsym(h, grim_symbols[i].name);
    if (!*grim_symbols[i].slot) {
      fprintf(stderr, "GRIM-NO-OPENCL %s: does not export %s\n", grim_library,
              grim_symbols[i].name);
      return 5;
    }
  }
  return 0;
}

/* A device info string, one line, trailing blanks removed. */
static void grim_info(cl_device_id d, cl_uint what, char* out, size_t n) {
  out[0] = 0;
  if (cl.GetDeviceInfo(d, what, n - 1, out, 0) != CL_SUCCESS) strcpy(out, "?");
  out[n - 1] = 0;
  for (char* c = out; *c; ++c) if (*c == '\n' || *c == '\r') *c = ' ';
  size_t k = strlen(out);
  while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == '\t')) out[--k] = 0;
}

static cl_platform_id grim_platform;
static cl_device_id grim_device;

/* The first GPU of any platform, else the first device. */
static int grim_pick(void) {
  cl_platform_id ps[16];
  cl_uint np = 0;
  cl_int e = cl.GetPlatformIDs(16, ps, &np);
  if (e != CL_SUCCESS || np == 0) {
    fprintf(stderr, "no OpenCL platform (clGetPlatformIDs returned %d, %u platforms)\n", e, np);
    return 6;
  }
  if (np > 16) np = 16;
  int found = 0;
  for (cl_uint p = 0; p < np; ++p) {
    cl_device_id ds[16];
    cl_uint nd = 0;
    if (cl.GetDeviceIDs(ps[p], CL_DEVICE_TYPE_ALL, 16, ds, &nd) != CL_SUCCESS) continue;
    if (nd > 16) nd = 16;
    for (cl_uint d = 0; d < nd; ++d) {
      cl_bitfield type = 0;
      cl.GetDeviceInfo(ds[d], CL_DEVICE_TYPE, sizeof type, &type, 0);
      if (!found || ((type & CL_DEVICE_TYPE_GPU) && found == 1)) {
        grim_platform = ps[p];
        grim_device = ds[d];
        found = (type & CL_DEVICE_TYPE_GPU) ? 2 : 1;
      }
    }
  }
  if (!found) {
    fprintf(stderr, "%u OpenCL platform(s), but no device\n", np);
    return 6;
  }
  return 0;
}

static void grim_print_identity(void) {
  char s[1024];
  printf("GRIM-OPENCL-LIBRARY %s\n", grim_library);
  s[0] = 0;
  if (cl.GetPlatformInfo(grim_platform, CL_PLATFORM_NAME, sizeof s - 1, s, 0) != CL_SUCCESS)
    strcpy(s, "?");
  s[sizeof s - 1] = 0;
  for (char* c = s; *c; ++c) if (*c == '\n' || *c == '\r') *c = ' ';
  printf("GRIM-OPENCL-PLATFORM %s\n", s);
  grim_info(grim_device, CL_DEVICE_NAME, s, sizeof s);
  printf("GRIM-OPENCL-DEVICE %s\n", s);
  grim_info(grim_device, CL_DEVICE_VERSION, s, sizeof s);
  printf("GRIM-OPENCL-VERSION %s\n", s);
  grim_info(grim_device, CL_DRIVER_VERSION, s, sizeof s);
  printf("GRIM-OPENCL-DRIVER %s\n", s);
  fflush(stdout);
}

/* ---- the program file ---- */

enum { GRIM_IN, GRIM_OUT, GRIM_TMP };
typedef struct { int kind; size_t len; } grim_arg;
typedef struct { char name[256]; size_t global[3], local[3]; } grim_launch;

static grim_arg* grim_args;
static int grim_nargs;
static grim_launch* grim_launches;
static int grim_nlaunches;
static int grim_fp16;
static const char* grim_source;

static char* grim_read_file(const char* path, size_t* len) {
  FILE* f = fopen(path, "rb");
  if (!f) { perror(path); return 0; }
  size_t cap = 1 << 16, n = 0;
  char* b = malloc(cap + 1);
  for (;;) {
    if (!b) { fclose(f); return 0; }
    n += fread(b + n, 1, cap - n, f);
    if (n < cap) break;
    cap *= 2;
    b = realloc(b, cap + 1);
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) { fprintf(stderr, "%s: read error\n", path); free(b); return 0; }
  b[n] = 0;
  *len = n;
  return b;
}

/* The next line of `*p` (NUL-terminated in place); NULL at the end. */
static char* grim_line(char** p) {
  if (!*p || !**p) return 0;
  char* l = *p;
  char* nl = strchr(l, '\n');
  if (nl) { *nl = 0; *p = nl + 1; } else { *p = l + strlen(l); }
  return l;
}

static int grim_parse_program(const char* path) {
  size_t len = 0;
  char* text = grim_read_file(path, &len);
  if (!text) return 3;
  char* p = text;
  char* l = grim_line(&p);
  if (!l || strcmp(l, "grim-opencl 1") != 0) {
    fprintf(stderr, "%s: not a grim OpenCL program file (first line `grim-opencl 1`)\n", path);
    return 2;
  }
  l = grim_line(&p);
  if (!l || sscanf(l, "fp16 %d", &grim_fp16) != 1) goto bad;
  l = grim_line(&p);
  if (!l || sscanf(l, "args %d", &grim_nargs) != 1 || grim_nargs < 0 || grim_nargs > 4096) goto bad;
  grim_args = calloc((size_t)grim_nargs + 1, sizeof *grim_args);
  if (!grim_args) return 3;
  for (int i = 0; i < grim_nargs; ++i) {
    char kind[8];
    unsigned long long n;
    l = grim_line(&p);
    if (!l || sscanf(l, "arg %7s %llu", kind, &n) != 2) goto bad;
    if (!strcmp(kind, "in")) grim_args[i].kind = GRIM_IN;
    else if (!strcmp(kind, "out")) grim_args[i].kind = GRIM_OUT;
    else if (!strcmp(kind, "tmp")) grim_args[i].kind = GRIM_TMP;
    else goto bad;
    if (n > ((size_t)1 << 40)) goto bad;
    grim_args[i].len = (size_t)n;
  }
  l = grim_line(&p);
  if (!l || sscanf(l, "launches %d", &grim_nlaunches) != 1 || grim_nlaunches < 1 ||
      grim_nlaunches > 1024)
    goto bad;
  grim_launches = calloc((size_t)grim_nlaunches, sizeof *grim_launches);
  if (!grim_launches) return 3;
  for (int i = 0; i < grim_nlaunches; ++i) {
    grim_launch* g = &grim_launches[i];
    unsigned long long v[6];
    l = grim_line(&p);
    if (!l || sscanf(l, "launch %255s %llu %llu %llu %llu %llu %llu", g->name, &v[0], &v[1],
                     &v[2], &v[3], &v[4], &v[5]) != 7)
      goto bad;
    for (int k = 0; k < 3; ++k) {
      if (v[k] == 0 || v[k + 3] == 0 || v[k] > ((size_t)1 << 31) || v[k + 3] > v[k]) goto bad;
      g->global[k] = (size_t)v[k];
      g->local[k] = (size_t)v[k + 3];
    }
  }
  l = grim_line(&p);
  if (!l || strcmp(l, "source") != 0) goto bad;
  grim_source = p;
  return 0;
bad:
  fprintf(stderr, "%s: malformed program file near `%s`\n", path, l ? l : "(end of file)");
  return 2;
}

/* ---- running ---- */

static cl_command_queue grim_queue;
static cl_mem* grim_bufs;
static cl_kernel* grim_kernels;
static void* grim_zeros;

static size_t grim_bytes(const grim_arg* a) { return a->len ? 4 * a->len : 4; }

/* One run: temporaries zeroed, every kernel in order; `*seconds` from the first
 * kernel's start to the last one's end. */
static int grim_run_once(double* seconds) {
  for (int i = 0; i < grim_nargs; ++i) {
    if (grim_args[i].kind != GRIM_TMP) continue;
    cl_int e = cl.EnqueueWriteBuffer(grim_queue, grim_bufs[i], CL_TRUE, 0, grim_bytes(&grim_args[i]),
                                     grim_zeros, 0, 0, 0);
    if (e != CL_SUCCESS) { fprintf(stderr, "zero-fill temporary %d: error %d\n", i, e); return 9; }
  }
  cl_event first = 0, last = 0;
  for (int k = 0; k < grim_nlaunches; ++k) {
    cl_event ev = 0;
    cl_int e = cl.EnqueueNDRangeKernel(grim_queue, grim_kernels[k], 3, 0, grim_launches[k].global,
                                       grim_launches[k].local, 0, 0, &ev);
    if (e != CL_SUCCESS) {
      fprintf(stderr, "clEnqueueNDRangeKernel(%s): error %d\n", grim_launches[k].name, e);
      return 9;
    }
    if (k == 0) first = ev;
    if (k > 0 && last && last != first) cl.ReleaseEvent(last);
    last = ev;
  }
  cl_int e = cl.Finish(grim_queue);
  if (e != CL_SUCCESS) { fprintf(stderr, "clFinish: error %d\n", e); return 9; }
  cl_ulong t0 = 0, t1 = 0;
  e = cl.GetEventProfilingInfo(first, CL_PROFILING_COMMAND_START, sizeof t0, &t0, 0);
  if (e == CL_SUCCESS)
    e = cl.GetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof t1, &t1, 0);
  if (e != CL_SUCCESS) { fprintf(stderr, "clGetEventProfilingInfo: error %d\n", e); return 9; }
  if (last != first) cl.ReleaseEvent(last);
  cl.ReleaseEvent(first);
  *seconds = t1 > t0 ? (double)(t1 - t0) * 1e-9 : 0.0;
  return 0;
}

static int grim_cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static int grim_run(const char* program, const char* input, const char* output, long warmup,
                    long repeat) {
  int rc = grim_parse_program(program);
  if (rc) return rc;
  char ext[8192];
  grim_info(grim_device, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
  if (grim_fp16 && !strstr(ext, "cl_khr_fp16")) {
    fprintf(stderr, "the program computes in half precision, but the device lacks cl_khr_fp16\n");
    return 8;
  }
  /* Inputs: every parameter in order. */
  size_t in_len = 0, want = 0, max_tmp = 4;
  for (int i = 0; i < grim_nargs; ++i) {
    if (grim_args[i].kind == GRIM_TMP) {
      if (grim_bytes(&grim_args[i]) > max_tmp) max_tmp = grim_bytes(&grim_args[i]);
    } else {
      want += 4 * grim_args[i].len;
    }
  }
  char* in = grim_read_file(input, &in_len);
  if (!in) return 3;
  if (in_len != want) {
    fprintf(stderr, "%s: %zu bytes, the program's parameters need %zu\n", input, in_len, want);
    return 3;
  }
  grim_zeros = calloc(1, max_tmp);
  grim_bufs = calloc((size_t)grim_nargs + 1, sizeof *grim_bufs);
  grim_kernels = calloc((size_t)grim_nlaunches, sizeof *grim_kernels);
  if (!grim_zeros || !grim_bufs || !grim_kernels) return 3;
  cl_int e = 0;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)grim_platform, 0};
  cl_context ctx = cl.CreateContext(props, 1, &grim_device, 0, 0, &e);
  if (!ctx || e != CL_SUCCESS) { fprintf(stderr, "clCreateContext: error %d\n", e); return 6; }
  grim_queue = cl.CreateCommandQueue(ctx, grim_device, CL_QUEUE_PROFILING_ENABLE, &e);
  if (!grim_queue || e != CL_SUCCESS) {
    fprintf(stderr, "clCreateCommandQueue: error %d\n", e);
    return 6;
  }
  const char* src = grim_source;
  size_t src_len = strlen(src);
  cl_program prog = cl.CreateProgramWithSource(ctx, 1, &src, &src_len, &e);
  if (!prog || e != CL_SUCCESS) { fprintf(stderr, "clCreateProgramWithSource: error %d\n", e); return 9; }
  e = cl.BuildProgram(prog, 1, &grim_device, "", 0, 0);
  if (e != CL_SUCCESS) {
    size_t n = 0;
    cl.GetProgramBuildInfo(prog, grim_device, CL_PROGRAM_BUILD_LOG, 0, 0, &n);
    char* log = calloc(1, n + 1);
    if (log && n) cl.GetProgramBuildInfo(prog, grim_device, CL_PROGRAM_BUILD_LOG, n, log, 0);
    fprintf(stderr, "clBuildProgram: error %d\n%s\n", e, log ? log : "");
    return 7;
  }
  size_t at = 0;
  for (int i = 0; i < grim_nargs; ++i) {
    grim_bufs[i] = cl.CreateBuffer(ctx, CL_MEM_READ_WRITE, grim_bytes(&grim_args[i]), 0, &e);
    if (!grim_bufs[i] || e != CL_SUCCESS) {
      fprintf(stderr, "clCreateBuffer(%zu bytes): error %d\n", grim_bytes(&grim_args[i]), e);
      return 9;
    }
    if (grim_args[i].kind != GRIM_TMP && grim_args[i].len) {
      e = cl.EnqueueWriteBuffer(grim_queue, grim_bufs[i], CL_TRUE, 0, 4 * grim_args[i].len, in + at,
                                0, 0, 0);
      if (e != CL_SUCCESS) { fprintf(stderr, "write parameter %d: error %d\n", i, e); return 9; }
      at += 4 * grim_args[i].len;
    }
  }
  size_t max_wg = 0, max_items[3] = {0, 0, 0};
  cl.GetDeviceInfo(grim_device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, 0);
  cl.GetDeviceInfo(grim_device, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof max_items, max_items, 0);
  for (int k = 0; k < grim_nlaunches; ++k) {
    grim_launch* g = &grim_launches[k];
    grim_kernels[k] = cl.CreateKernel(prog, g->name, &e);
    if (!grim_kernels[k] || e != CL_SUCCESS) {
      fprintf(stderr, "clCreateKernel(%s): error %d\n", g->name, e);
      return 9;
    }
    for (int i = 0; i < grim_nargs; ++i) {
      e = cl.SetKernelArg(grim_kernels[k], (cl_uint)i, sizeof(cl_mem), &grim_bufs[i]);
      if (e != CL_SUCCESS) { fprintf(stderr, "clSetKernelArg(%s, %d): error %d\n", g->name, i, e); return 9; }
    }
    size_t kmax = max_wg;
    cl.GetKernelWorkGroupInfo(grim_kernels[k], grim_device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kmax,
                              &kmax, 0);
    if (max_wg && kmax > max_wg) kmax = max_wg;
    size_t wg = g->local[0] * g->local[1] * g->local[2];
    int too_big = kmax && wg > kmax;
    for (int a = 0; a < 3; ++a) if (max_items[a] && g->local[a] > max_items[a]) too_big = 1;
    if (too_big) {
      fprintf(stderr,
              "kernel %s: work-group size %zux%zux%zu (%zu work-items) exceeds what the device allows "
              "for it (%zu work-items, %zux%zux%zu per axis)\n",
              g->name, g->local[0], g->local[1], g->local[2], wg, kmax, max_items[0], max_items[1],
              max_items[2]);
      return 8;
    }
  }
  double t;
  rc = grim_run_once(&t);
  if (rc) return rc;
  FILE* out = fopen(output, "wb");
  if (!out) { perror(output); return 3; }
  for (int i = 0; i < grim_nargs; ++i) {
    if (grim_args[i].kind != GRIM_OUT || !grim_args[i].len) continue;
    size_t n = 4 * grim_args[i].len;
    void* b = malloc(n);
    if (!b) return 3;
    e = cl.EnqueueReadBuffer(grim_queue, grim_bufs[i], CL_TRUE, 0, n, b, 0, 0, 0);
    if (e != CL_SUCCESS) { fprintf(stderr, "read output %d: error %d\n", i, e); return 9; }
    if (fwrite(b, 1, n, out) != n) { perror(output); return 3; }
    free(b);
  }
  if (fclose(out) != 0) { perror(output); return 3; }
  for (long w = 0; w < warmup; ++w) {
    rc = grim_run_once(&t);
    if (rc) return rc;
  }
  double* samples = malloc(sizeof(double) * (size_t)repeat);
  if (!samples) return 3;
  for (long s = 0; s < repeat; ++s) {
    rc = grim_run_once(&samples[s]);
    if (rc) return rc;
  }
  double mean = 0, var = 0;
  for (long s = 0; s < repeat; ++s) mean += samples[s];
  mean /= (double)repeat;
  for (long s = 0; s < repeat; ++s) var += (samples[s] - mean) * (samples[s] - mean);
  double stddev = repeat > 1 ? sqrt(var / (double)(repeat - 1)) : 0.0;
  qsort(samples, (size_t)repeat, sizeof(double), grim_cmp);
  double median = repeat % 2 ? samples[repeat / 2]
                             : 0.5 * (samples[repeat / 2 - 1] + samples[repeat / 2]);
  printf("GRIM-TIMING %.9e %.9e %.9e %.9e 1 %ld\n", median, samples[0], mean, stddev, repeat);
  return 0;
}

int main(int argc, char** argv) {
  int probe = argc == 3 && !strcmp(argv[1], "probe");
  int run = argc == 8 && !strcmp(argv[1], "run");
  if (!probe && !run) {
    fprintf(stderr,
            "usage: %s probe LIB\n       %s run LIB PROGRAM INPUT OUTPUT WARMUP REPEAT\n"
            "LIB: the OpenCL library, or - to use $" /*GRIM-ENV*/ " or search the usual paths\n",
            argv[0], argv[0]);
    return 2;
  }
  const char* lib = argv[2];
  if (!strcmp(lib, "-")) lib = getenv(/*GRIM-ENV*/);
  long warmup = 0, repeat = 1;
  if (run) {
    char* end;
    warmup = strtol(argv[6], &end, 10);
    if (*end || warmup < 0 || warmup > 100000) { fprintf(stderr, "bad WARMUP `%s`\n", argv[6]); return 2; }
    repeat = strtol(argv[7], &end, 10);
    if (*end || repeat < 1 || repeat > 100000) { fprintf(stderr, "bad REPEAT `%s`\n", argv[7]); return 2; }
  }
  int rc = grim_load(lib);
  if (rc) return rc;
  rc = grim_pick();
  if (rc) return rc;
  grim_print_identity();
  if (probe) return 0;
  return grim_run(argv[3], argv[4], argv[5], warmup, repeat);
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_failures_parse() {
        let out = "GRIM-OPENCL-LIBRARY /vendor/lib64/libOpenCL.so\nGRIM-OPENCL-PLATFORM ARM Platform\nGRIM-OPENCL-DEVICE Mali-G710 \nGRIM-OPENCL-VERSION OpenCL 3.0 v1.r38p1\nGRIM-OPENCL-DRIVER 3.0\nGRIM-TIMING 1 1 1 0 1 1\n";
        let i = OpenClInfo::parse(out).unwrap();
        assert_eq!(i.device, "Mali-G710");
        assert_eq!(i.platform, "ARM Platform");
        assert_eq!(i.version, "OpenCL 3.0 v1.r38p1");
        assert_eq!(i.library, "/vendor/lib64/libOpenCL.so");
        assert!(OpenClInfo::parse("GRIM-OPENCL-DEVICE \n").is_none());

        let err = "GRIM-NO-OPENCL /vendor/lib64/libOpenCL.so: cannot open shared object file: No such file or directory\nGRIM-NO-OPENCL libOpenCL.so: nope\n";
        let e = HarnessError::from_run(Some(exit::NO_LIBRARY), err).unwrap();
        assert_eq!(
            e.to_string(),
            "no OpenCL library; searched: /vendor/lib64/libOpenCL.so, libOpenCL.so"
        );
        assert_eq!(HarnessError::from_run(Some(0), ""), None);
        assert!(matches!(
            HarnessError::from_run(Some(exit::BUILD_FAILED), "log"),
            Some(HarnessError::BuildFailed(l)) if l == "log"
        ));
        assert!(matches!(
            HarnessError::from_run(None, "x"),
            Some(HarnessError::Failed(_))
        ));
    }

    #[test]
    fn the_source_has_every_search_path_and_the_environment_variable() {
        let s = harness_source();
        for p in LIBRARY_PATHS {
            assert!(s.contains(&format!("\"{p}\",")), "{p}");
        }
        assert!(s.contains("getenv(\"GRIM_OPENCL_LIB\")"));
        assert_eq!(c_string("a\"b\\c\né"), "\"a\\\"b\\\\c\\012\\303\\251\"");
    }
}
