//! What the adb test files share: a loopback device of `adb-loopback` and an isolated
//! adb server (Debian's real `adb`) connected to it. Each test file uses part of it.
#![allow(dead_code)]

use adb_loopback::server::AdbServer;
use adb_loopback::{spawn, Config, Handle};
use std::path::PathBuf;
use std::time::Duration;

/// A loopback device and an isolated adb server connected to it.
pub struct Rig {
    /// The device (`None` once a test has taken it to stop it).
    pub dev: Option<Handle>,
    /// The isolated adb server.
    pub adb: AdbServer,
    /// The `adb` wrapper script that talks to that server.
    pub wrapper: PathBuf,
    /// The device's serial (`127.0.0.1:PORT`).
    pub serial: String,
}

impl Rig {
    /// The running device.
    pub fn device(&self) -> &Handle {
        self.dev.as_ref().expect("the device was taken by the test")
    }

    /// The device's file system root on this machine.
    pub fn root(&self) -> PathBuf {
        self.device().root()
    }
}

/// Starts a device with `cfg` and an adb server, and connects them.
pub fn rig_with(cfg: Config) -> Rig {
    let dev = spawn(cfg).expect("start the loopback device");
    let adb =
        AdbServer::start().expect("start an isolated adb server (is Debian's adb installed?)");
    let serial = dev.serial();
    adb.connect(&serial, Duration::from_secs(20))
        .expect("adb connect");
    let wrapper = adb.wrapper().unwrap();
    Rig {
        dev: Some(dev),
        adb,
        wrapper,
        serial,
    }
}
