//! The device's filesystem: a directory on this machine playing `/`, with a generated
//! `getprop`, `/proc/cpuinfo`, cpufreq files, and qemu launchers for pushed aarch64
//! executables.

use crate::Config;
use std::io;
use std::path::{Component, Path, PathBuf};

/// First line of the launcher that stands in for a pushed aarch64 executable.
const LAUNCHER_MARK: &str = "#!/bin/sh\n# adb-loopback: aarch64 ELF run by qemu\n";

/// The device's filesystem root and its qemu CPU.
#[derive(Debug, Clone)]
pub struct Device {
    /// The directory playing `/`.
    pub root: PathBuf,
    /// qemu CPU model for aarch64 executables.
    pub qemu_cpu: String,
    /// `QEMU_LD_PREFIX` for dynamic aarch64 executables.
    pub qemu_ld_prefix: Option<PathBuf>,
}

/// A fresh temporary directory for a device on `port`.
pub fn temp_root(port: u16) -> io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let p = std::env::temp_dir().join(format!(
        "adb-loopback-{}-{port}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

/// Single-quotes `s` for `sh`.
fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl Device {
    /// Lays out `root`: `/data/local/tmp`, `/system/bin/getprop`, `/proc/cpuinfo`,
    /// `/sys/devices/system/cpu/cpuN/cpufreq/cpuinfo_max_freq`,
    /// `/sys/class/thermal/thermal_zoneN/temp`.
    pub fn create(root: PathBuf, config: &Config) -> io::Result<Device> {
        std::fs::create_dir_all(root.join("data/local/tmp"))?;
        let bin = root.join("system/bin");
        std::fs::create_dir_all(&bin)?;
        let mut script = String::from(
            "#!/bin/sh\n# getprop of the adb-loopback device\nif [ $# -eq 0 ]; then\n",
        );
        for (k, v) in &config.props {
            script.push_str(&format!("  echo {}\n", sq(&format!("[{k}]: [{v}]"))));
        }
        script.push_str("  exit 0\nfi\ncase \"$1\" in\n");
        for (k, v) in &config.props {
            script.push_str(&format!("  {}) echo {} ;;\n", sq(k), sq(v)));
        }
        script.push_str("  *) echo \"${2:-}\" ;;\nesac\n");
        write_exec(&bin.join("getprop"), script.as_bytes())?;
        std::fs::create_dir_all(root.join("proc"))?;
        let mut cpuinfo = String::new();
        for (i, part) in config.cpu_parts.iter().enumerate() {
            cpuinfo.push_str(&format!(
                "processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: {part:#05x}\nCPU revision\t: 0\n\n"
            ));
        }
        if let Some(h) = config.props.get("ro.hardware") {
            cpuinfo.push_str(&format!("Hardware\t: {h}\n"));
        }
        std::fs::write(root.join("proc/cpuinfo"), cpuinfo)?;
        for (i, khz) in config.cpu_max_khz.iter().enumerate() {
            let d = root.join(format!("sys/devices/system/cpu/cpu{i}/cpufreq"));
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("cpuinfo_max_freq"), format!("{khz}\n"))?;
        }
        for (i, t) in config.thermal_millic.iter().enumerate() {
            let d = root.join(format!("sys/class/thermal/thermal_zone{i}"));
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join("temp"), format!("{t}\n"))?;
        }
        Ok(Device {
            root,
            qemu_cpu: config.qemu_cpu.clone(),
            qemu_ld_prefix: config.qemu_ld_prefix.clone(),
        })
    }

    /// Where a device path lives on this machine; `None` for relative paths or paths
    /// with `..`.
    pub fn host_path(&self, device_path: &str) -> Option<PathBuf> {
        let p = Path::new(device_path);
        if !p.is_absolute() {
            return None;
        }
        let mut out = self.root.clone();
        for c in p.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(out)
    }

    /// Rewrites the absolute device paths of a shell command (`/data/...`,
    /// `/proc/cpuinfo`, `/sys/...`) into the root. Textual: a path starts after the
    /// start of the text, a blank, a quote, `=`, `:`, `;`, `&`, `|`, `(` or `>`/`<`.
    pub fn map_command(&self, cmd: &str) -> String {
        let root = self.root.display().to_string();
        let prefixes = ["/data/", "/proc/cpuinfo", "/sys/"];
        let mut out = String::with_capacity(cmd.len());
        let mut prev: Option<char> = None;
        let mut i = 0;
        while i < cmd.len() {
            let rest = &cmd[i..];
            let boundary = prev.is_none_or(|c| c.is_whitespace() || "'\"=:;&|(<>".contains(c));
            if boundary && prefixes.iter().any(|p| rest.starts_with(p)) {
                out.push_str(&root);
            }
            let Some(c) = rest.chars().next() else { break };
            out.push(c);
            prev = Some(c);
            i += c.len_utf8();
        }
        out
    }

    /// Stores a pushed file. An aarch64 ELF executable is kept under
    /// `/.qemu/<path>` with a launcher at its path.
    pub fn store(&self, host: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
        if let Some(parent) = host.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let perm = mode & 0o7777;
        if is_aarch64_elf(bytes) {
            let real = self.real_of(host);
            if let Some(parent) = real.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&real, bytes)?;
            set_mode(&real, 0o755)?;
            let prefix = match &self.qemu_ld_prefix {
                Some(p) => format!("QEMU_LD_PREFIX={} ", sq(&p.display().to_string())),
                None => String::new(),
            };
            let launcher = format!(
                "{LAUNCHER_MARK}OMP_WAIT_POLICY=PASSIVE {prefix}exec qemu-aarch64 -cpu {} {} \"$@\"\n",
                sq(&self.qemu_cpu),
                sq(&real.display().to_string())
            );
            std::fs::write(host, launcher)?;
            set_mode(host, perm | 0o500)
        } else {
            std::fs::write(host, bytes)?;
            set_mode(host, if perm == 0 { 0o644 } else { perm })
        }
    }

    /// Reads a file as the device would (a launcher reads as its executable).
    pub fn load(&self, host: &Path) -> io::Result<Vec<u8>> {
        let bytes = std::fs::read(host)?;
        if bytes.starts_with(LAUNCHER_MARK.as_bytes()) {
            return std::fs::read(self.real_of(host));
        }
        Ok(bytes)
    }

    fn real_of(&self, host: &Path) -> PathBuf {
        let rel = host.strip_prefix(&self.root).unwrap_or(host);
        self.root.join(".qemu").join(rel)
    }
}

/// True for a 64-bit little-endian ELF with `e_machine` = 183 (EM_AARCH64).
pub fn is_aarch64_elf(bytes: &[u8]) -> bool {
    bytes.len() > 20
        && bytes.starts_with(b"\x7fELF")
        && bytes[4] == 2
        && bytes[5] == 1
        && u16::from_le_bytes([bytes[18], bytes[19]]) == 183
}

fn write_exec(p: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(p, bytes)?;
    set_mode(p, 0o755)
}

fn set_mode(p: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (p, mode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_into_the_root() {
        let d = Device {
            root: PathBuf::from("/tmp/r"),
            qemu_cpu: "cortex-a76".into(),
            qemu_ld_prefix: None,
        };
        assert_eq!(
            d.host_path("/data/local/tmp/x").unwrap(),
            PathBuf::from("/tmp/r/data/local/tmp/x")
        );
        assert!(d.host_path("/data/../etc").is_none());
        assert!(d.host_path("rel").is_none());
        assert_eq!(
            d.map_command("cd '/data/local/tmp/a b' && cat /proc/cpuinfo x/data/y"),
            "cd '/tmp/r/data/local/tmp/a b' && cat /tmp/r/proc/cpuinfo x/data/y"
        );
    }
}
