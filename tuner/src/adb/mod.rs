//! Measuring on a phone over adb: [`AdbRunner`] drives the real `adb` program, always
//! with `-s SERIAL`. Per session it creates a directory on the device (default
//! `/data/local/tmp/grim/<session>`), pushes each batch binary once and each
//! candidate's inputs, runs the candidate with `adb shell` (every argument quoted with
//! [`shell_quote`]), pulls the outputs back and checks them against the reference
//! before its time counts. The directory is removed by [`AdbRunner::finish`] or on drop.
//!
//! Faults: a missing, offline or unauthorized device is an [`AdbError`] that says what
//! to do; a candidate that runs past the run timeout is killed on the device by its
//! pid and recorded as [`ErrorKind::RunTimeout`](crate::measure::ErrorKind::RunTimeout); when the device disappears the
//! candidate is recorded as [`ErrorKind::DeviceLost`](crate::measure::ErrorKind::DeviceLost) and the next measurement first
//! reconnects (`adb connect` for `host:port` serials) with exponential backoff, a
//! bounded number of times, re-creating the directory and pushing again.
//!
//! OpenCL ([`AdbRunner::new_opencl`]): the device-side harness of
//! [`codegen::opencl_harness`] is built for the device's ABI, pushed once, and loads the
//! device's `libOpenCL.so` with `dlopen` (the usual vendor paths, or
//! [`AdbOptions::opencl_library`]); each candidate is a program file (OpenCL C plus its
//! launches) pushed and run by it, its outputs pulled back and checked like the CPU
//! path's. The OpenCL device's name joins the device identity. A device without an
//! OpenCL library is [`AdbError::NoOpenCl`], naming every path searched.
//!
//! [`devices`] lists the connected devices with their identity ([`probe_identity`]:
//! `getprop`, `/proc/cpuinfo` CPU parts mapped to core names, core frequencies), and
//! on request the OpenCL device of each. Everything read from adb's output goes
//! through [`parse`].

mod device;
mod opencl;
pub mod parse;
mod quote;
mod runner;

pub use device::{devices, list, probe_identity, require_device, AdbError};
pub use parse::{
    core_name, max_temperature_c, parse_devices, parse_pid, parse_probe, run_status, state_text,
    Listed, Probe,
};
pub use quote::{shell_quote, shell_words};
pub use runner::{AdbOptions, AdbRunner};
