//! Crash consistency with a real process: `db-writer` inserts records in a loop and
//! reports each one once it is durable; it is killed with SIGKILL at random moments.
//! After every kill the database opens, holds every reported record, and every stored
//! record (and index entry) is whole.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;
use tuning_logs::Database;

const WRITER: &str = env!("CARGO_BIN_EXE_db-writer");

/// xorshift64*, seeded from the clock (printed, so a failure can be replayed with
/// GRIM_CRASH_SEED).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The index a record was written for (its trace samples it).
fn index_of(r: &tuning_logs::Record) -> Option<u64> {
    match r.trace.instructions.first()? {
        schedule::Instruction::SampleCategorical { candidates, .. } => {
            candidates.first().map(|&c| c as u64)
        }
        _ => None,
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_committed_record() {
    let seed = std::env::var("GRIM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("GRIM_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut committed: BTreeSet<u64> = BTreeSet::new();
    let mut next_index = 0u64;
    let runs = 24;
    let mut kills_mid_write = 0;
    for run in 0..runs {
        // Alternate flushing after every record and after batches of 7.
        let batch = if run % 2 == 0 { 1 } else { 7 };
        let mut child = Command::new(WRITER)
            .arg(&path)
            .arg(next_index.to_string())
            .arg("1000000")
            .arg(batch.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut r = std::io::BufReader::new(stdout);
            let mut buf = Vec::new();
            // Only whole lines count: a line cut by the kill was never reported.
            while r.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
                if buf.ends_with(b"\n") {
                    lines.push(String::from_utf8_lossy(&buf).trim().to_string());
                }
                buf.clear();
            }
            lines
        });
        // Some kills land while the database opens, most while it writes.
        std::thread::sleep(Duration::from_millis(5 + rng.next() % 120));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        let lines = reader.join().unwrap();
        if status.code().is_none() {
            kills_mid_write += 1;
        } else {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("writer exited by itself ({status}): {err}");
        }
        for l in &lines {
            let i: u64 = l
                .strip_prefix("committed ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected writer output {l:?}"));
            committed.insert(i);
        }
        // Every record the writer reported is there; every record is whole.
        let db = Database::open(&path).unwrap_or_else(|e| panic!("run {run}: {e}"));
        let n = db
            .check()
            .unwrap_or_else(|e| panic!("run {run} (seed {seed}): {e}"));
        let stored: BTreeSet<u64> = db
            .iter()
            .map(|s| index_of(&s.unwrap().record).unwrap())
            .collect();
        assert_eq!(stored.len(), n, "run {run}: an index was written twice");
        let missing: Vec<_> = committed.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "run {run} (seed {seed}): committed records lost: {missing:?}"
        );
        // The next run starts after everything that may have been written.
        next_index = stored
            .iter()
            .next_back()
            .map_or(next_index, |m| m + 1)
            .max(next_index)
            + 1_000;
        drop(db);
    }
    assert_eq!(kills_mid_write, runs);
    assert!(
        committed.len() > 20,
        "too few records were committed ({}) for the test to mean anything",
        committed.len()
    );
    eprintln!(
        "{runs} kills, {} committed records, all present",
        committed.len()
    );
}
