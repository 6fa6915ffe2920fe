//! `run_with_timeout` kills the whole process tree of a command that runs past its
//! limit (a compiler driver's `cc1`, a wrapper's program), not only the direct child.

use codegen::toolchain::run_with_timeout;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_timeout_kills_the_grandchildren_too() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!(
        "sleep 30 & echo $! > '{}'; wait",
        pidfile.display()
    ));
    let t0 = Instant::now();
    let r = run_with_timeout(&mut cmd, Duration::from_millis(300)).unwrap();
    assert!(r.is_none(), "timed out");
    assert!(t0.elapsed() < Duration::from_secs(10));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The orphaned `sleep` is reaped by init once killed; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting to be reaped.
        if state.is_empty() || state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grandchild {pid} still running: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
