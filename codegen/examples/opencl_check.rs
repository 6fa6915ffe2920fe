//! Checks a BCR FC layer on the local OpenCL device against the interpreter, with the
//! default schedule (one work-item) and a GPU schedule, and prints the kernel times.
//!
//! `cargo run --release -p codegen --example opencl_check [DEVICE-NAME-SUBSTRING]`
use codegen::opencl_run::{check_against_interpreter, OpenClDevice, OpenClProtocol};
use codegen::Target;
use schedule::{Remainder, Schedule};
use tir::workload::Workload;
use tir::ForKind;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args().nth(1);
    let dev = OpenClDevice::open(name.as_deref())?;
    let spec = "bcr-fc:M=512,K=512,N=16,block=16x16,sparsity=0.9,bias=1,act=relu,seed=1";
    let w = Workload::from_spec_str(spec)?;
    let target = Target::OpenCl { fp16: false };
    let protocol = OpenClProtocol {
        warmup: 3,
        repeat: 10,
    };
    for gpu in [false, true] {
        let mut s = Schedule::from_workload(&w)?;
        if gpu {
            s.bind("init_m", ForKind::BlockX)?;
            s.bind("init_n", ForKind::ThreadX)?;
            s.split("n", &[None, Some(4)], Remainder::Exact)?;
            s.bind("n_0", ForKind::ThreadX)?;
            s.vectorize("n_1")?;
            s.bind("act_m", ForKind::BlockX)?;
            s.bind("act_n", ForKind::ThreadX)?;
        }
        let mut args = w.random_inputs(1);
        args.extend(s.weights().iter().map(|(k, v)| (k.clone(), v.clone())));
        let r = check_against_interpreter(s.func(), &args, &target, &dev, 1e-4, &protocol)?;
        println!(
            "{spec} on {} ({}): passed={} rel err {:.1e}, median {:.1} us over {} kernels",
            r.device,
            if gpu {
                "GPU schedule"
            } else {
                "single work-item"
            },
            r.passed,
            r.max_rel,
            r.timing.median * 1e6,
            r.launches.len()
        );
    }
    Ok(())
}
