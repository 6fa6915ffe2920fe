//! An isolated adb server for a test: its own `HOME` (keys, no user config) and its own
//! `ANDROID_ADB_SERVER_PORT`, so tests never touch a developer's adb server or devices.
//! Dropping it runs `adb kill-server`.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1 outside 5555-5585 (the range the adb server scans).
pub fn free_port() -> io::Result<u16> {
    for _ in 0..50 {
        let l = TcpListener::bind(("127.0.0.1", 0))?;
        let p = l.local_addr()?.port();
        if !(5555..=5585).contains(&p) {
            return Ok(p);
        }
    }
    Err(io::Error::other("no free port outside 5555-5585"))
}

/// The `adb` program and the environment of an isolated server.
pub struct AdbServer {
    adb: PathBuf,
    home: PathBuf,
    port: u16,
}

impl AdbServer {
    /// Starts an isolated server (`adb start-server`) with `adb` from PATH.
    pub fn start() -> io::Result<AdbServer> {
        Self::start_with(Path::new("adb"))
    }

    /// Starts an isolated server with the given `adb` program.
    pub fn start_with(adb: &Path) -> io::Result<AdbServer> {
        let port = free_port()?;
        let home =
            std::env::temp_dir().join(format!("adb-loopback-home-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&home)?;
        let s = AdbServer {
            adb: adb.to_path_buf(),
            home,
            port,
        };
        let out = s.run(&["start-server"])?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "adb start-server: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(s)
    }

    /// The server's port (`ANDROID_ADB_SERVER_PORT`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The isolated `HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// An `adb` command talking to this server (arguments still to add).
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.adb);
        self.apply_env(&mut c);
        c
    }

    /// Sets `HOME` and `ANDROID_ADB_SERVER_PORT` of this server on any command (for
    /// instance a program that runs `adb` itself).
    pub fn apply_env(&self, c: &mut Command) {
        c.env("HOME", &self.home)
            .env("ANDROID_ADB_SERVER_PORT", self.port.to_string())
            .env_remove("ANDROID_SERIAL")
            .env_remove("ADB_VENDOR_KEYS")
            .stdin(Stdio::null());
    }

    /// Writes a script `HOME/adb` that runs this `adb` against this server (for a
    /// program that takes an `adb` path, like `grim-tune --adb`); returns its path.
    pub fn wrapper(&self) -> io::Result<PathBuf> {
        let p = self.home.join("adb");
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let script = format!(
            "#!/bin/sh\nHOME={} ANDROID_ADB_SERVER_PORT={} exec {} \"$@\"\n",
            q(&self.home.display().to_string()),
            self.port,
            q(&self.adb.display().to_string())
        );
        std::fs::write(&p, script)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(p)
    }

    /// Runs `adb ARGS` and waits.
    pub fn run(&self, args: &[&str]) -> io::Result<Output> {
        self.command().args(args).output()
    }

    /// `adb connect SERIAL`, then waits (up to `limit`) until `get-state` says `device`.
    pub fn connect(&self, serial: &str, limit: Duration) -> io::Result<()> {
        let start = Instant::now();
        loop {
            let _ = self.run(&["connect", serial])?;
            let st = self.run(&["-s", serial, "get-state"])?;
            if String::from_utf8_lossy(&st.stdout).trim() == "device" {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(io::Error::other(format!(
                    "{serial} not ready after {limit:?}: {}",
                    String::from_utf8_lossy(&st.stderr).trim()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for AdbServer {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
