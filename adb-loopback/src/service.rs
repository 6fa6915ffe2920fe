//! The services a stream can open: `shell:`, `shell,v2,...:`, `exec:` and `sync:`.

use crate::stream::{Stream, StreamReader, StreamWriter};
use crate::Shared;
use std::io::{self, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// A service request (the payload of `OPEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Service {
    /// `shell:CMD` (stdout and stderr merged, no exit code) or, with `v2`, the shell
    /// protocol (`shell,v2,raw:CMD`).
    Shell { v2: bool, command: String },
    /// `exec:CMD`: raw stdout.
    Exec(String),
    /// `sync:`: file transfer.
    Sync,
}

/// Parses a service name; `None` for services this daemon does not offer (and for an
/// interactive shell, which needs a terminal).
pub(crate) fn parse(name: &str) -> Option<Service> {
    if let Some(rest) = name.strip_prefix("shell") {
        let (opts, command) = rest.split_once(':')?;
        if !(opts.is_empty() || opts.starts_with(',')) || command.is_empty() {
            return None;
        }
        let v2 = opts.split(',').any(|o| o == "v2");
        return Some(Service::Shell {
            v2,
            command: command.to_string(),
        });
    }
    if let Some(cmd) = name.strip_prefix("exec:") {
        return (!cmd.is_empty()).then(|| Service::Exec(cmd.to_string()));
    }
    (name == "sync:").then_some(Service::Sync)
}

/// Runs a service on its stream until done, then closes the stream.
pub(crate) fn run(svc: Service, stream: Stream, shared: &Arc<Shared>) {
    let Stream { reader, writer } = stream;
    let _ = match svc {
        Service::Shell { v2, command } => shell(&command, v2, reader, &writer, shared, true),
        Service::Exec(command) => shell(&command, false, reader, &writer, shared, false),
        Service::Sync => sync(reader, &writer, shared),
    };
    writer.close();
}

/// Kills every running command (the daemon stops).
pub(crate) fn kill_all(shared: &Shared) {
    if let Ok(v) = shared.children.lock() {
        for pgid in v.iter() {
            kill_group(*pgid);
        }
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn packet(id: u8, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(5 + data.len());
    p.push(id);
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p.extend_from_slice(data);
    p
}

fn spawn_command(command: &str, shared: &Shared) -> io::Result<Child> {
    let dev = &shared.device;
    let path = format!(
        "{}:{}",
        dev.root.join("system/bin").display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(dev.map_command(command))
        .current_dir(&dev.root)
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.spawn()
}

/// Copies `from` into the stream, framed as shell-protocol packets `id` when `v2`.
fn pump(
    mut from: impl Read + Send + 'static,
    writer: Arc<StreamWriter>,
    id: Option<u8>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let data = match id {
                Some(id) => packet(id, &buf[..n]),
                None => buf[..n].to_vec(),
            };
            if writer.write_all(&data).is_err() {
                break;
            }
        }
    })
}

/// `shell` and `exec`: runs `sh -c COMMAND` on the device. With `v2`, stdout and
/// stderr go in packets 1 and 2, stdin arrives in packets 0 (closed by 4), and the
/// exit code ends the stream in packet 3. Without, stdout (and stderr when
/// `with_stderr`) go raw. A closed stream or a stopping daemon kills the command.
fn shell(
    command: &str,
    v2: bool,
    mut reader: StreamReader,
    writer: &Arc<StreamWriter>,
    shared: &Arc<Shared>,
    with_stderr: bool,
) -> io::Result<()> {
    let mut child = match spawn_command(command, shared) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("adb-loopback: cannot run sh: {e}\n");
            if v2 {
                writer.write_all(&packet(2, msg.as_bytes()))?;
                writer.write_all(&packet(3, &[127]))?;
            } else {
                writer.write_all(msg.as_bytes())?;
            }
            return Ok(());
        }
    };
    let pgid = child.id();
    if let Ok(mut v) = shared.children.lock() {
        v.push(pgid);
    }
    let mut pumps = Vec::new();
    if let Some(o) = child.stdout.take() {
        pumps.push(pump(o, writer.clone(), v2.then_some(1)));
    }
    if let Some(e) = child.stderr.take() {
        if v2 {
            pumps.push(pump(e, writer.clone(), Some(2)));
        } else if with_stderr {
            pumps.push(pump(e, writer.clone(), None));
        }
    }
    // Stdin: shell-protocol packets (v2) or raw bytes, until the stream ends.
    let stdin = child.stdin.take();
    std::thread::spawn(move || {
        let mut stdin = stdin;
        let mut buf = vec![0u8; 16 * 1024];
        if v2 {
            loop {
                let mut h = [0u8; 5];
                if reader.read_exact(&mut h).is_err() {
                    break;
                }
                let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
                let mut data = vec![0u8; len.min(1 << 20)];
                if reader.read_exact(&mut data).is_err() {
                    break;
                }
                match h[0] {
                    0 => {
                        if let Some(s) = stdin.as_mut() {
                            let _ = s.write_all(&data);
                        }
                    }
                    4 => stdin = None,
                    _ => {}
                }
            }
        } else {
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Some(s) = stdin.as_mut() {
                    let _ = s.write_all(&buf[..n]);
                }
            }
        }
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) => {}
            Err(_) => break None,
        }
        if writer.is_closed() || shared.stop.load(Ordering::SeqCst) {
            kill_group(pgid);
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // The group may keep the pipes open (a background process): kill it before joining.
    if let Ok(mut v) = shared.children.lock() {
        v.retain(|p| *p != pgid);
    }
    for p in pumps {
        let _ = p.join();
    }
    if v2 {
        let code = match status {
            Some(st) => match st.code() {
                Some(c) => c,
                None => {
                    #[cfg(unix)]
                    let sig = std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0);
                    #[cfg(not(unix))]
                    let sig = 0;
                    128 + sig
                }
            },
            None => 255,
        };
        writer.write_all(&packet(3, &[(code & 0xff) as u8]))?;
    }
    Ok(())
}

fn mkid(s: &[u8; 4]) -> u32 {
    u32::from_le_bytes(*s)
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn words(id: &[u8; 4], vals: &[u32]) -> Vec<u8> {
    let mut v = id.to_vec();
    for x in vals {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

fn fail(msg: &str) -> Vec<u8> {
    let mut v = words(b"FAIL", &[msg.len() as u32]);
    v.extend_from_slice(msg.as_bytes());
    v
}

/// `(mode, size, mtime)` of a host file as the device reports it; zeros when missing.
fn stat_of(shared: &Shared, path: &str) -> (u32, u32, u32) {
    let Some(host) = shared.device.host_path(path) else {
        return (0, 0, 0);
    };
    let Ok(md) = std::fs::symlink_metadata(&host) else {
        return (0, 0, 0);
    };
    #[cfg(unix)]
    let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions());
    #[cfg(not(unix))]
    let mode = if md.is_dir() { 0o040755 } else { 0o100644 };
    let size = if md.is_file() {
        shared
            .device
            .load(&host)
            .map(|b| b.len() as u32)
            .unwrap_or(0)
    } else {
        md.len() as u32
    };
    let mtime = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    (mode, size, mtime)
}

/// `sync:`: requests are `ID LEN PAYLOAD` (ids and lengths little-endian `u32`).
fn sync(mut r: StreamReader, w: &Arc<StreamWriter>, shared: &Arc<Shared>) -> io::Result<()> {
    loop {
        let mut id = [0u8; 4];
        if r.read_exact(&mut id).is_err() {
            return Ok(());
        }
        let len = read_u32(&mut r)? as usize;
        if len > 4096 && &id != b"QUIT" {
            w.write_all(&fail("path too long"))?;
            return Ok(());
        }
        let mut arg = vec![0u8; len];
        r.read_exact(&mut arg)?;
        let arg = String::from_utf8_lossy(&arg).to_string();
        match &id {
            b"STAT" => {
                let (m, s, t) = stat_of(shared, &arg);
                w.write_all(&words(b"STAT", &[m, s, t]))?;
            }
            b"LIST" => {
                if let Some(dir) = shared.device.host_path(&arg) {
                    if let Ok(rd) = std::fs::read_dir(&dir) {
                        for e in rd.flatten() {
                            let name = e.file_name().to_string_lossy().to_string();
                            let (m, s, t) =
                                stat_of(shared, &format!("{}/{name}", arg.trim_end_matches('/')));
                            let mut v = words(b"DENT", &[m, s, t, name.len() as u32]);
                            v.extend_from_slice(name.as_bytes());
                            w.write_all(&v)?;
                        }
                    }
                }
                w.write_all(&words(b"DONE", &[0, 0, 0, 0]))?;
            }
            b"SEND" => {
                let (path, mode) = match arg.rsplit_once(',') {
                    Some((p, m)) => (p.to_string(), m.parse::<u32>().unwrap_or(0o644)),
                    None => (arg.clone(), 0o644),
                };
                let mut bytes = Vec::new();
                loop {
                    let mut cid = [0u8; 4];
                    r.read_exact(&mut cid)?;
                    let n = read_u32(&mut r)?;
                    if cid == *b"DATA" {
                        if n > 1 << 20 {
                            w.write_all(&fail("DATA chunk too large"))?;
                            return Ok(());
                        }
                        let mut chunk = vec![0u8; n as usize];
                        r.read_exact(&mut chunk)?;
                        bytes.extend_from_slice(&chunk);
                    } else if cid == *b"DONE" {
                        break; // n is the mtime
                    } else {
                        w.write_all(&fail("expected DATA or DONE"))?;
                        return Ok(());
                    }
                }
                let stored = match shared.device.host_path(&path) {
                    Some(host) => shared
                        .device
                        .store(&host, &bytes, mode)
                        .map_err(|e| format!("{path}: {e}")),
                    None => Err(format!("{path}: not an absolute device path")),
                };
                match stored {
                    Ok(()) => w.write_all(&words(b"OKAY", &[0]))?,
                    Err(m) => w.write_all(&fail(&m))?,
                }
            }
            b"RECV" => {
                let data = shared
                    .device
                    .host_path(&arg)
                    .ok_or_else(|| io::Error::other("not an absolute path"))
                    .and_then(|h| shared.device.load(&h));
                match data {
                    Ok(bytes) => {
                        for chunk in bytes.chunks(64 * 1024) {
                            let mut v = words(b"DATA", &[chunk.len() as u32]);
                            v.extend_from_slice(chunk);
                            w.write_all(&v)?;
                        }
                        w.write_all(&words(b"DONE", &[0]))?;
                    }
                    Err(e) => w.write_all(&fail(&format!("{arg}: {e}")))?,
                }
            }
            b"QUIT" => return Ok(()),
            _ => {
                let name = String::from_utf8_lossy(&id).to_string();
                let _ = mkid(&id);
                w.write_all(&fail(&format!("unsupported sync request {name}")))?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert_eq!(
            parse("shell,v2,raw:echo hi"),
            Some(Service::Shell {
                v2: true,
                command: "echo hi".into()
            })
        );
        assert_eq!(
            parse("shell:ls"),
            Some(Service::Shell {
                v2: false,
                command: "ls".into()
            })
        );
        assert_eq!(
            parse("shell,v2,TERM=xterm,raw:a:b"),
            Some(Service::Shell {
                v2: true,
                command: "a:b".into()
            })
        );
        assert_eq!(parse("shell:"), None);
        assert_eq!(parse("exec:cat x"), Some(Service::Exec("cat x".into())));
        assert_eq!(parse("sync:"), Some(Service::Sync));
        assert_eq!(parse("reboot:"), None);
    }
}
