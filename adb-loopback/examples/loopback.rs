//! Runs a loopback device until killed: `cargo run -p adb-loopback --example loopback
//! [PORT]`, then `adb connect 127.0.0.1:PORT` (use an isolated adb server, see the
//! crate docs, and a port outside 5555-5585).

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let dev = match adb_loopback::spawn(adb_loopback::Config {
        port,
        ..adb_loopback::Config::default()
    }) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("loopback: {e}");
            std::process::exit(1);
        }
    };
    println!("{} {}", dev.serial(), dev.root().display());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
