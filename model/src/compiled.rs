//! A model's layers compiled to one host shared library and run in-process.
//!
//! Each layer's scheduled `tir` function (the best tuned schedule from the tuning
//! database, or the default loop nest with a printed note) goes through the caller's
//! pipeline hook (the compiler's e-graph pass), the C emitter, and `cc -O3
//! -march=native -fopenmp -shared`; the library is loaded with `libloading` and each
//! layer is called through a generated `grim_layer_<i>(void **args)` wrapper with
//! pointers to its inputs, the layer's weight buffers (BCR index arrays included) and
//! its outputs. Glue ops stay in Rust, as with every executor.

use crate::error::ModelError;
use crate::exec::LayerExec;
use crate::layer::Layer;
use codegen::Target;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::path::Path;
use std::process::Command;
use tir::workload::Workload;
use tir::{DType, Function, ParamKind, Tensor};
use tuning_logs::{apply_best, ApplyBest, Database, DeviceIdentity};

/// Where a layer's schedule came from.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleSource {
    /// The best record of the tuning database, with its cost.
    Tuned {
        /// Its cost (seconds or instructions).
        cost: f64,
    },
    /// The best record of the layer's dense form ([`Layer::densified`]: the same
    /// layer with its pruned weights as dense matrices), used because it is faster
    /// than the BCR kernel's best record, or the BCR kernel has none.
    DenseForm {
        /// Its cost (seconds or instructions).
        cost: f64,
        /// The BCR kernel's best cost, when it has a record.
        bcr_cost: Option<f64>,
    },
    /// No record: the default loop nest.
    Default,
}

/// A layer's scheduled function with its weight buffers (schedules such as column
/// reordering add weight buffers of their own) and where it came from.
#[derive(Debug, Clone)]
pub struct LayerSchedule {
    /// The scheduled function.
    pub func: Function,
    /// Data of every weight parameter of `func`.
    pub weights: BTreeMap<String, Tensor>,
    /// Tuned or default.
    pub source: ScheduleSource,
}

/// One compiled layer.
struct Entry {
    call: unsafe extern "C" fn(*const *mut c_void) -> i32,
    func: Function,
    /// Weight buffers in parameter order (inputs and outputs are `None`).
    weights: Vec<Option<Tensor>>,
}

/// The layers of a model compiled into one shared library.
pub struct Compiled {
    entries: Vec<Entry>,
    /// Where each layer's schedule came from, in layer order.
    pub sources: Vec<(String, ScheduleSource)>,
    // Keeps the library mapped while `entries` point into it. It is never unloaded:
    // the kernels' OpenMP worker threads (libgomp, loaded with the library) outlive a
    // call, and unloading the code they idle in crashes the process.
    _lib: std::mem::ManuallyDrop<libloading::Library>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("sources", &self.sources)
            .finish()
    }
}

/// Picks each layer's function: the database's best for (`target`, `device`) when
/// `db` has one, else the default (host for the in-process library; the device's
/// target for standalone programs). A pruned layer runs as its dense form instead
/// when that form's best record is faster than the BCR kernel's (or the BCR kernel
/// has none); the outputs are the same up to the order of the sums.
pub fn schedules(
    layers: &[Layer],
    db: Option<&Database>,
    target: &tuning_logs::Target,
    device: &DeviceIdentity,
) -> Result<Vec<LayerSchedule>, ModelError> {
    let best = |name: &str, w: &Workload| -> Result<Option<(LayerSchedule, f64)>, ModelError> {
        let Some(db) = db else { return Ok(None) };
        Ok(
            match apply_best(db, w, target, device)
                .map_err(|e| ModelError::exec(name, e.to_string()))?
            {
                ApplyBest::Tuned { schedule, record } => {
                    let cost = record.record.cost().unwrap_or(f64::NAN);
                    Some((
                        LayerSchedule {
                            func: schedule.func().clone(),
                            weights: schedule.weights().clone(),
                            source: ScheduleSource::Tuned { cost },
                        },
                        cost,
                    ))
                }
                ApplyBest::NoRecord(_) => None,
            },
        )
    };
    layers
        .iter()
        .map(|l| {
            let w = l.workload()?;
            let tuned = best(&l.name, &w)?;
            // The dense form is only worth building when there are records to find.
            let dense = match (db, l.densified()) {
                (Some(_), Some(d)) => best(&l.name, &d?.workload()?)?,
                _ => None,
            };
            Ok(match (tuned, dense) {
                (bcr, Some((mut d, cost))) if bcr.as_ref().is_none_or(|(_, b)| cost < *b) => {
                    d.source = ScheduleSource::DenseForm {
                        cost,
                        bcr_cost: bcr.map(|(_, b)| b),
                    };
                    d
                }
                (Some((s, _)), _) => s,
                (None, _) => LayerSchedule {
                    func: w.func.clone(),
                    weights: w.weights.clone(),
                    source: ScheduleSource::Default,
                },
            })
        })
        .collect()
}

impl Compiled {
    /// Compiles `layers` with the given functions (one per layer, from [`schedules`]),
    /// each passed through `prepare` (the compile pipeline) first.
    pub fn build(
        layers: &[Layer],
        funcs: Vec<LayerSchedule>,
        prepare: &dyn Fn(&Function) -> Function,
    ) -> Result<Compiled, ModelError> {
        let target = Target::Host;
        let dir = tempfile::tempdir().map_err(|source| ModelError::Io {
            path: "temporary directory".to_string(),
            source,
        })?;
        let mut src = codegen::c_emit::prelude(&target);
        let mut pending = Vec::new();
        let mut sources = Vec::new();
        for (i, (layer, sched)) in layers.iter().zip(funcs).enumerate() {
            let func = prepare(&sched.func);
            let kernel = format!("layer{i}");
            let code = codegen::c_emit::emit_kernel(&func, &kernel, &target)
                .map_err(|e| ModelError::exec(&layer.name, e.to_string()))?;
            src.push_str(&code);
            let args: Vec<String> = func
                .params
                .iter()
                .enumerate()
                .map(|(k, p)| format!("({}*)args[{k}]", codegen::c_emit::c_elem_type(p.dtype)))
                .collect();
            src.push_str(&format!(
                "int grim_layer_{i}(void **args) {{ return {}({}); }}\n",
                codegen::c_emit::kernel_symbol(&kernel),
                args.join(", ")
            ));
            let weights = func
                .params
                .iter()
                .map(|p| match p.kind {
                    ParamKind::Weight => sched.weights.get(&p.name).cloned(),
                    _ => None,
                })
                .collect();
            sources.push((layer.name.clone(), sched.source));
            pending.push((func, weights));
        }
        let c = dir.path().join("model.c");
        let so = dir.path().join("libgrim_model.so");
        std::fs::write(&c, &src).map_err(|source| ModelError::Io {
            path: c.display().to_string(),
            source,
        })?;
        compile(&c, &so)?;
        // SAFETY: the library is the one just built from generated C whose only
        // initialisers are the C runtime's; it stays loaded as long as `Compiled`.
        let lib = unsafe { libloading::Library::new(&so) }
            .map_err(|e| ModelError::exec("model", format!("loading {}: {e}", so.display())))?;
        let mut entries = Vec::new();
        for (i, (func, weights)) in pending.into_iter().enumerate() {
            let name = format!("grim_layer_{i}");
            // SAFETY: the symbol is generated above with exactly this signature.
            let call = unsafe {
                lib.get::<unsafe extern "C" fn(*const *mut c_void) -> i32>(name.as_bytes())
                    .map(|s| *s)
            }
            .map_err(|e| ModelError::exec(&layers[i].name, format!("symbol {name}: {e}")))?;
            entries.push(Entry {
                call,
                func,
                weights,
            });
        }
        Ok(Compiled {
            entries,
            sources,
            _lib: std::mem::ManuallyDrop::new(lib),
            _dir: dir,
        })
    }
}

fn compile(c: &Path, so: &Path) -> Result<(), ModelError> {
    let out = Command::new("cc")
        .args(["-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-o"])
        .arg(so)
        .arg(c)
        .arg("-lm")
        .output()
        .map_err(|e| ModelError::exec("model", format!("starting cc (install gcc): {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(ModelError::exec(
            "model",
            format!(
                "cc failed: {}",
                err.lines().take(20).collect::<Vec<_>>().join("\n")
            ),
        ));
    }
    Ok(())
}

impl LayerExec for Compiled {
    fn run(
        &mut self,
        layers: &[Layer],
        index: usize,
        inputs: &[&[f32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let name = layers.get(index).map_or("?", |l| l.name.as_str());
        let entry = self
            .entries
            .get_mut(index)
            .ok_or_else(|| ModelError::exec(name, "not compiled"))?;
        let mut outputs: Vec<Vec<f32>> = Vec::new();
        let mut in_no = 0usize;
        // First pass: allocate outputs and check inputs.
        for p in &entry.func.params {
            match p.kind {
                ParamKind::Input => {
                    let x = inputs.get(in_no).ok_or_else(|| {
                        ModelError::exec(name, format!("input `{}` is missing", p.name))
                    })?;
                    if x.len() != p.len() || p.dtype != DType::F32 {
                        return Err(ModelError::exec(
                            name,
                            format!(
                                "input `{}` has {} values, expected {}",
                                p.name,
                                x.len(),
                                p.len()
                            ),
                        ));
                    }
                    in_no += 1;
                }
                ParamKind::Output => outputs.push(vec![0.0; p.len()]),
                ParamKind::Weight => {}
            }
        }
        let mut args: Vec<*mut c_void> = Vec::with_capacity(entry.func.params.len());
        let (mut in_no, mut out_no) = (0usize, 0usize);
        for (p, w) in entry.func.params.iter().zip(&entry.weights) {
            let ptr = match p.kind {
                ParamKind::Input => {
                    in_no += 1;
                    inputs[in_no - 1].as_ptr() as *mut c_void
                }
                ParamKind::Output => {
                    out_no += 1;
                    outputs[out_no - 1].as_mut_ptr() as *mut c_void
                }
                ParamKind::Weight => match w.as_ref() {
                    Some(t) if t.dtype() == p.dtype && t.len() == p.len() => {
                        t.as_raw_ptr() as *mut c_void
                    }
                    Some(_) => {
                        return Err(ModelError::exec(
                            name,
                            format!(
                                "weight `{}` does not have the parameter's type and length {}",
                                p.name,
                                p.len()
                            ),
                        ))
                    }
                    None => {
                        return Err(ModelError::exec(
                            name,
                            format!("no data for weight `{}`", p.name),
                        ))
                    }
                },
            };
            args.push(ptr);
        }
        // SAFETY: every pointer refers to a live buffer of exactly the parameter's
        // length and type (checked above); inputs and weights are only read (they are
        // `const` in the generated C); the kernel writes only its outputs.
        let rc = unsafe { (entry.call)(args.as_ptr()) };
        if rc != 0 {
            return Err(ModelError::exec(
                name,
                format!("kernel returned {rc} (allocation failure)"),
            ));
        }
        Ok(outputs)
    }
}
