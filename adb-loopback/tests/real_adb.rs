//! The loopback device with Debian's real `adb` client and server: connect, shell with
//! exit codes and stderr, exec-out, push and pull (an aarch64 binary runs under qemu).

use adb_loopback::server::AdbServer;
use adb_loopback::{spawn, Config};
use std::time::Duration;

fn out(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn shell_push_pull_with_the_real_adb() {
    let dev = spawn(Config::default()).unwrap();
    let adb = AdbServer::start().unwrap();
    let serial = dev.serial();
    adb.connect(&serial, Duration::from_secs(15)).unwrap();
    let s = serial.as_str();

    let o = adb
        .run(&["-s", s, "shell", "echo hello; echo oops >&2; exit 3"])
        .unwrap();
    let (so, se) = out(&o);
    assert_eq!(so, "hello\n");
    assert_eq!(se, "oops\n");
    assert_eq!(o.status.code(), Some(3), "shell v2 carries the exit code");

    let o = adb
        .run(&["-s", s, "shell", "getprop", "ro.product.model"])
        .unwrap();
    assert_eq!(out(&o).0.trim(), "grim loopback");
    let o = adb.run(&["-s", s, "shell", "cat /proc/cpuinfo"]).unwrap();
    assert!(out(&o).0.contains("CPU part\t: 0xd0b"), "{:?}", out(&o));

    // Push and pull a file of several sync chunks.
    let tmp = std::env::temp_dir().join(format!("adb-loopback-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let src = tmp.join("blob.bin");
    std::fs::write(&src, &data).unwrap();
    let o = adb
        .run(&[
            "-s",
            s,
            "push",
            src.to_str().unwrap(),
            "/data/local/tmp/t/blob.bin",
        ])
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    let o = adb
        .run(&["-s", s, "shell", "wc -c < /data/local/tmp/t/blob.bin"])
        .unwrap();
    assert_eq!(out(&o).0.trim(), "300000");
    let back = tmp.join("back.bin");
    let o = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/data/local/tmp/t/blob.bin",
            back.to_str().unwrap(),
        ])
        .unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    let o = adb
        .run(&["-s", s, "exec-out", "cat /data/local/tmp/t/blob.bin"])
        .unwrap();
    assert_eq!(o.stdout, data, "exec-out is binary-clean");

    // A missing file: pull fails with the device's message.
    let o = adb
        .run(&[
            "-s",
            s,
            "pull",
            "/data/local/tmp/none",
            back.to_str().unwrap(),
        ])
        .unwrap();
    assert!(!o.status.success());
    let _ = std::fs::remove_dir_all(&tmp);
    dev.stop();
}
