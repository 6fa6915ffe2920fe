//! # adb-loopback
//!
//! Test infrastructure, not a product: a small device-side adb daemon ("adbd") that
//! listens on a loopback TCP port and speaks the adb transport protocol, so that the
//! real `adb` client and server (Debian's `adb`) can be exercised end to end without a
//! phone: `adb connect 127.0.0.1:PORT`, then `adb -s 127.0.0.1:PORT shell|push|pull`.
//!
//! What it implements:
//! - the transport ([`message`]): `CNXN` (no `AUTH`; the banner carries configurable
//!   `getprop` values and `features=shell_v2`), `OPEN`/`OKAY`/`WRTE`/`CLSE` streams
//!   with adb's one-outstanding-`WRTE` flow control;
//! - services: `shell:` (raw), `shell,v2,...:` (stdout, stderr and the exit
//!   code in shell-protocol packets; stdin forwarded), `exec:` (raw stdout), and
//!   `sync:` with `STAT`/`LIST`/`SEND`/`RECV`/`DATA`/`DONE`/`QUIT`.
//!
//! The "device" is this machine ([`device`]): commands run with `sh -c` inside a
//! temporary directory that plays the device's filesystem root. Absolute paths under
//! `/data/`, `/proc/cpuinfo` and `/sys/` in a command are rewritten into that directory
//! (textually: this is a test double, not a sandbox), `getprop` is a generated script
//! answering the configured properties, and `/proc/cpuinfo` lists the configured CPU
//! parts. A pushed aarch64 ELF executable (`e_machine` 183) is stored with a tiny
//! launcher in its place that runs it under `qemu-aarch64 -cpu CPU` (with
//! `QEMU_LD_PREFIX` set to the configured aarch64 system root, for dynamic binaries),
//! so a pushed ARM binary runs when the shell executes its path; any other executable
//! (an x86-64 one, for a device playing an x86-64 emulator) runs as it is; `sync` reads (pull, stat)
//! still return the original bytes.
//!
//! ```no_run
//! let dev = adb_loopback::spawn(adb_loopback::Config::default()).unwrap();
//! println!("adb connect 127.0.0.1:{}", dev.port());
//! dev.stop();
//! ```
#![warn(missing_docs)]

pub mod device;
pub mod message;
pub mod server;
mod service;
mod stream;

use device::Device;
use message::{Message, A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_VERSION, A_WRTE, MAX_PAYLOAD};
use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use stream::Conn;

/// How the loopback device looks and where it keeps its files.
#[derive(Debug, Clone)]
pub struct Config {
    /// Port to listen on, on 127.0.0.1 (0: any free port). Use one outside
    /// 5555-5585: the adb server scans that range and grabs devices there.
    pub port: u16,
    /// The directory playing the device's `/` (None: a fresh temporary directory,
    /// removed by [`Handle::stop`]). Pass the same directory to a restarted daemon to
    /// keep the device's files.
    pub root: Option<PathBuf>,
    /// `getprop` values; also sent in the `CNXN` banner (`ro.product.*` keys).
    pub props: BTreeMap<String, String>,
    /// `CPU part` of each core in `/proc/cpuinfo` (ARM implementer 0x41).
    pub cpu_parts: Vec<u32>,
    /// `cpuinfo_max_freq` of each core, kHz (in `/sys/devices/system/cpu/cpuN/cpufreq/`).
    pub cpu_max_khz: Vec<u32>,
    /// The qemu CPU model that runs pushed aarch64 binaries.
    pub qemu_cpu: String,
    /// The aarch64 system root qemu loads a dynamic executable's libraries from
    /// (`QEMU_LD_PREFIX`; Debian's cross C library by default), so that dynamic
    /// aarch64 binaries run too. Static binaries do not use it.
    pub qemu_ld_prefix: Option<PathBuf>,
    /// Readings of `/sys/class/thermal/thermal_zoneN/temp`, millidegrees Celsius.
    pub thermal_millic: Vec<i64>,
    /// Answer `CNXN` with an `AUTH` token and never accept a key: the host lists the
    /// device as `unauthorized` (a phone whose USB-debugging prompt was not accepted).
    pub unauthorized: bool,
}

impl Default for Config {
    /// A phone-like device: 4 Cortex-A55 (0xd05) and 4 Cortex-A76 (0xd0b) cores.
    fn default() -> Self {
        let props = [
            ("ro.product.model", "grim loopback"),
            ("ro.product.name", "grim_loopback"),
            ("ro.product.device", "loopback"),
            ("ro.product.manufacturer", "grim"),
            ("ro.product.cpu.abi", "arm64-v8a"),
            ("ro.board.platform", "loopback-soc"),
            ("ro.hardware", "loopback"),
            ("ro.build.version.sdk", "33"),
        ];
        Config {
            port: 0,
            root: None,
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cpu_parts: vec![0xd05, 0xd05, 0xd05, 0xd05, 0xd0b, 0xd0b, 0xd0b, 0xd0b],
            cpu_max_khz: vec![
                1_800_000, 1_800_000, 1_800_000, 1_800_000, 2_400_000, 2_400_000, 2_400_000,
                2_400_000,
            ],
            qemu_cpu: "cortex-a76".into(),
            qemu_ld_prefix: Some(PathBuf::from("/usr/aarch64-linux-gnu")),
            thermal_millic: vec![38_000, 41_500],
            unauthorized: false,
        }
    }
}

/// State shared by the listener, the connections and the services.
pub(crate) struct Shared {
    pub(crate) device: Device,
    pub(crate) stop: AtomicBool,
    /// When set, connections stop reading and answering (a hung device).
    pub(crate) frozen: AtomicBool,
    pub(crate) sockets: Mutex<Vec<TcpStream>>,
    /// Process groups of running commands, killed on stop.
    pub(crate) children: Mutex<Vec<u32>>,
    pub(crate) props: BTreeMap<String, String>,
    pub(crate) unauthorized: bool,
}

/// A running loopback device. Dropping it stops it.
pub struct Handle {
    port: u16,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
    temp_root: bool,
}

impl Handle {
    /// The TCP port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The adb serial of this device once connected: `127.0.0.1:PORT`.
    pub fn serial(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The directory playing the device's `/`.
    pub fn root(&self) -> PathBuf {
        self.shared.device.root.clone()
    }

    /// Stops answering (reads nothing, writes nothing) while `frozen` is true, like a
    /// device that hangs without closing its connection.
    pub fn set_frozen(&self, frozen: bool) {
        self.shared.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Stops the daemon: closes the listener and every connection and kills running
    /// commands (the host sees the device disappear). Removes a temporary root.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Ok(socks) = self.shared.sockets.lock() {
            for s in socks.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        if let Some(t) = self.listener.take() {
            let _ = t.join();
        }
        service::kill_all(&self.shared);
        if self.temp_root {
            let _ = std::fs::remove_dir_all(&self.shared.device.root);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the daemon on 127.0.0.1 (never any other address) in a background thread.
pub fn spawn(config: Config) -> io::Result<Handle> {
    let listener = TcpListener::bind(("127.0.0.1", config.port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let (root, temp_root) = match &config.root {
        Some(r) => (r.clone(), false),
        None => (device::temp_root(port)?, true),
    };
    let device = Device::create(root, &config)?;
    let shared = Arc::new(Shared {
        device,
        stop: AtomicBool::new(false),
        frozen: AtomicBool::new(false),
        sockets: Mutex::new(Vec::new()),
        children: Mutex::new(Vec::new()),
        props: config.props.clone(),
        unauthorized: config.unauthorized,
    });
    let sh = shared.clone();
    let t = std::thread::spawn(move || accept_loop(listener, sh));
    Ok(Handle {
        port,
        shared,
        listener: Some(t),
        temp_root,
    })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((sock, _)) => {
                let _ = sock.set_nonblocking(false);
                let _ = sock.set_nodelay(true);
                if let (Ok(mut v), Ok(c)) = (shared.sockets.lock(), sock.try_clone()) {
                    v.push(c);
                }
                let sh = shared.clone();
                conns.push(std::thread::spawn(move || {
                    let _ = serve(sock, sh);
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    for c in conns {
        let _ = c.join();
    }
}

/// The banner of the `CNXN` reply: `device::` + `ro.product.*` properties + features.
fn banner(props: &BTreeMap<String, String>) -> Vec<u8> {
    let mut s = String::from("device::");
    for key in ["ro.product.name", "ro.product.model", "ro.product.device"] {
        if let Some(v) = props.get(key) {
            s.push_str(&format!("{key}={v};"));
        }
    }
    s.push_str("features=shell_v2");
    s.into_bytes()
}

/// Serves one connection from the adb server.
fn serve(sock: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    let mut reader = sock.try_clone()?;
    let conn = Arc::new(Conn::new(sock));
    loop {
        while shared.frozen.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let m = match Message::read_from(&mut reader, MAX_PAYLOAD) {
            Ok(m) => m,
            Err(_) => break,
        };
        if shared.frozen.load(Ordering::SeqCst) {
            continue; // swallowed: a hung device answers nothing
        }
        match m.command {
            A_CNXN if shared.unauthorized => {
                // AUTH TOKEN (type 1) with a 20-byte token; signatures are ignored.
                conn.send(&Message::new(A_AUTH, 1, 0, vec![0x5a; 20]))?;
            }
            // A signature of our token: reject it with a new token (the host then
            // offers its public key, which we never accept).
            A_AUTH if shared.unauthorized && m.arg0 == 2 => {
                conn.send(&Message::new(A_AUTH, 1, 0, vec![0x5a; 20]))?;
            }
            A_CNXN => {
                let version = m.arg0.min(A_VERSION);
                let maxdata = m.arg1.clamp(4096, MAX_PAYLOAD);
                conn.set_max_payload(maxdata as usize);
                conn.send(&Message::new(
                    A_CNXN,
                    version,
                    maxdata,
                    banner(&shared.props),
                ))?;
            }
            A_OPEN => {
                let name = String::from_utf8_lossy(&m.data)
                    .trim_end_matches('\0')
                    .to_string();
                let remote = m.arg0;
                match service::parse(&name) {
                    Some(svc) => {
                        let stream = conn.open(remote);
                        conn.send(&Message::new(A_OKAY, stream.local_id(), remote, Vec::new()))?;
                        let sh = shared.clone();
                        std::thread::spawn(move || service::run(svc, stream, &sh));
                    }
                    None => conn.send(&Message::new(A_CLSE, 0, remote, Vec::new()))?,
                }
            }
            // arg0 = the host's id, arg1 = ours. Acknowledge once queued.
            A_WRTE if conn.deliver(m.arg1, m.data) => {
                conn.send(&Message::new(A_OKAY, m.arg1, m.arg0, Vec::new()))?;
            }
            A_OKAY => conn.ack(m.arg1),
            A_CLSE => conn.remote_closed(m.arg1),
            _ => {} // AUTH, STLS, SYNC: not used with this daemon
        }
    }
    conn.close_all();
    Ok(())
}
