//! The database: a sled directory with the trees described in [`crate::key`].

use crate::device::DeviceIdentity;
use crate::error::DbError;
use crate::key::{self, GROUP_LEN};
use crate::record::{ErrorKind, Record, FORMAT_VERSION};
use crate::target::Target;
use schedule::Trace;
use sled::transaction::{TransactionError, Transactional};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tir::WorkloadKey;

/// A record as stored, with its sequence number (insertion order).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Sequence number: unique, increasing in insertion order.
    pub seq: u64,
    /// The record.
    pub record: Record,
}

/// Which records a query is about: one workload on one target and one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Query<'a> {
    /// The workload.
    pub workload: &'a WorkloadKey,
    /// The target.
    pub target: &'a Target,
    /// The device; its serial is ignored.
    pub device: &'a DeviceIdentity,
}

/// An open tuning database. sled holds an exclusive lock on it until dropped.
pub struct Database {
    path: PathBuf,
    db: sled::Db,
    records: sled::Tree,
    best: sled::Tree,
    measured: sled::Tree,
    meta: sled::Tree,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

const META_FORMAT: &[u8] = b"format";

/// Attempts to take the lock, 25 ms apart, before [`DbError::Locked`] (0.5 s).
const LOCK_ATTEMPTS: u32 = 20;

/// Removes `snap.*.generating` files (snapshots sled did not finish writing) from the
/// database directory; returns how many were removed.
fn remove_partial_snapshots(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("snap.") && name.ends_with(".generating")
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

impl Database {
    /// Opens the database at `path`, creating it if it does not exist. Fails without
    /// hanging (after at most half a second of retries) with [`DbError::Locked`] when
    /// another process holds it, and with [`DbError::NewerFormat`] when a newer grim
    /// wrote it.
    pub fn open(path: &Path) -> Result<Database, DbError> {
        // sled takes its lock with a non-blocking flock. A database just closed by this
        // process can stay locked for a few milliseconds (a child process being
        // spawned holds the descriptor until it execs), so retry briefly, then fail.
        let mut attempts = 0;
        let mut removed_partial_snapshots = false;
        let db = loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => break db,
                // sled 0.34 writes a snapshot to `snap.N.generating` and renames it when
                // complete, but its recovery also reads `.generating` files: a process
                // killed while writing one leaves a database that refuses to open with
                // "Read corrupted data". Such a file is incomplete by construction and
                // recovery does not need it (the log holds everything after the last
                // complete snapshot), so remove it and retry once. This open held the
                // lock when it failed, so no live process owns the file.
                Err(sled::Error::Corruption { .. })
                    if !removed_partial_snapshots && remove_partial_snapshots(path) > 0 =>
                {
                    removed_partial_snapshots = true;
                }
                Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                    attempts += 1;
                    if attempts >= LOCK_ATTEMPTS {
                        return Err(DbError::Locked {
                            path: path.to_path_buf(),
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(source) => {
                    return Err(DbError::Sled {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            }
        };
        let sled_err = |source| DbError::Sled {
            path: path.to_path_buf(),
            source,
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let d = Database {
            path: path.to_path_buf(),
            records: tree("records")?,
            best: tree("best")?,
            measured: tree("measured")?,
            meta: tree("meta")?,
            db,
        };
        match d.meta.get(META_FORMAT).map_err(sled_err)? {
            Some(v) => {
                let found: u32 = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        d.corrupt("meta", META_FORMAT, "format version is not a number")
                    })?;
                if found > FORMAT_VERSION {
                    return Err(DbError::NewerFormat {
                        path: path.to_path_buf(),
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None => {
                d.meta
                    .insert(META_FORMAT, FORMAT_VERSION.to_string().as_bytes())
                    .map_err(sled_err)?;
                d.flush()?;
            }
        }
        Ok(d)
    }

    /// Opens an existing database; [`DbError::NotFound`] if there is none at `path`
    /// (for commands that only read, so a typo does not create an empty database).
    pub fn open_existing(path: &Path) -> Result<Database, DbError> {
        if !path.join("db").is_file() {
            return Err(DbError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Database::open(path)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sled_err(&self, source: sled::Error) -> DbError {
        DbError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, tree: &str, key: &[u8], reason: impl Into<String>) -> DbError {
        DbError::Corrupt {
            path: self.path.clone(),
            tree: tree.to_string(),
            key: key::hex(key),
            reason: reason.into(),
        }
    }

    /// The group prefix of a query. Workload keys that are not hex cannot have records;
    /// they are refused as invalid.
    fn group(&self, q: &Query<'_>) -> Result<[u8; GROUP_LEN], DbError> {
        let w = key::workload_prefix(q.workload).ok_or_else(|| {
            DbError::InvalidRecord(crate::error::RecordError::new(
                "workload",
                format!("key {} is not two groups of 16 hex digits", q.workload),
            ))
        })?;
        Ok(key::group_prefix(&w, q.target.id(), q.device.id()))
    }

    fn group_of(record: &Record) -> Result<[u8; GROUP_LEN], DbError> {
        let w = key::workload_prefix(&record.workload.key()).ok_or_else(|| {
            crate::error::RecordError::new("workload", "key is not 16 hex digits")
        })?;
        Ok(key::group_prefix(
            &w,
            record.target.id(),
            record.device.id(),
        ))
    }

    /// Inserts a record and flushes: when this returns `Ok`, the record is on disk and
    /// survives a crash. The record is validated first. Returns its sequence number.
    pub fn insert(&self, record: &Record) -> Result<u64, DbError> {
        let seq = self.insert_unflushed(record)?;
        self.flush()?;
        Ok(seq)
    }

    /// Inserts a record without flushing (much faster; durable only after the next
    /// [`flush`](Self::flush) returns). The record and its index entries are written in
    /// one transaction, so a crash leaves all of them or none.
    pub fn insert_unflushed(&self, record: &Record) -> Result<u64, DbError> {
        record.validate()?;
        let group = Self::group_of(record)?;
        let value = serde_json::to_vec(record).map_err(|e| {
            DbError::InvalidRecord(crate::error::RecordError::new("record", e.to_string()))
        })?;
        let trace_json = record.trace_json();
        let median = record.cost();
        let seq = self.db.generate_id().map_err(|e| self.sled_err(e))?;
        let rk = key::record_key(&group, seq);
        let mk = key::measured_key(&group, &trace_json, seq);
        let bk = median.map(|m| key::best_key(&group, m, seq));
        (&self.records, &self.best, &self.measured)
            .transaction(|(r, b, m)| {
                r.insert(&rk[..], value.as_slice())?;
                if let Some(bk) = &bk {
                    b.insert(&bk[..], &[][..])?;
                }
                m.insert(&mk[..], &[][..])?;
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Storage(s) => self.sled_err(s),
                TransactionError::Abort(()) => self.sled_err(sled::Error::ReportableBug(
                    "insert transaction aborted".into(),
                )),
            })?;
        Ok(seq)
    }

    /// Makes every earlier insert durable (fsync).
    pub fn flush(&self) -> Result<(), DbError> {
        self.db.flush().map(|_| ()).map_err(|e| self.sled_err(e))
    }

    fn decode(&self, k: &[u8], v: &[u8]) -> Result<Stored, DbError> {
        let record: Record = serde_json::from_slice(v)
            .map_err(|e| self.corrupt("records", k, format!("record does not decode: {e}")))?;
        record
            .validate()
            .map_err(|e| self.corrupt("records", k, e.to_string()))?;
        let group =
            Self::group_of(&record).map_err(|e| self.corrupt("records", k, e.to_string()))?;
        if k.len() != GROUP_LEN + 8 || k[..GROUP_LEN] != group {
            return Err(self.corrupt(
                "records",
                k,
                "key does not match the record's workload, target and device",
            ));
        }
        let seq = key::seq_of(k).ok_or_else(|| self.corrupt("records", k, "short key"))?;
        Ok(Stored { seq, record })
    }

    fn scan(&self, prefix: &[u8]) -> impl Iterator<Item = Result<Stored, DbError>> + '_ {
        self.records.scan_prefix(prefix).map(move |item| {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            self.decode(&k, &v)
        })
    }

    /// Every record, ordered by workload, target, device, then insertion.
    pub fn iter(&self) -> impl Iterator<Item = Result<Stored, DbError>> + '_ {
        self.scan(&[])
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The best `k` measured records of one workload on one target and device, best
    /// first: lowest median, ties broken by insertion order. Failed records are never
    /// among them; records of other targets or devices are never seen.
    pub fn best_k(&self, q: &Query<'_>, k: usize) -> Result<Vec<Stored>, DbError> {
        let group = self.group(q)?;
        let mut out = Vec::new();
        for item in self.best.scan_prefix(group).take(k) {
            let (bk, _) = item.map_err(|e| self.sled_err(e))?;
            let seq = key::seq_of(&bk).ok_or_else(|| self.corrupt("best", &bk, "short key"))?;
            let rk = key::record_key(&group, seq);
            let v = self
                .records
                .get(rk)
                .map_err(|e| self.sled_err(e))?
                .ok_or_else(|| self.corrupt("best", &bk, "index entry without a record"))?;
            out.push(self.decode(&rk, &v)?);
        }
        Ok(out)
    }

    /// The best record of a query, if any.
    pub fn best(&self, q: &Query<'_>) -> Result<Option<Stored>, DbError> {
        Ok(self.best_k(q, 1)?.into_iter().next())
    }

    /// The best measured record of a query for which `keep` holds (lowest median, ties
    /// by insertion order), walking the best index only as far as the first such
    /// record.
    pub fn best_where(
        &self,
        q: &Query<'_>,
        keep: impl Fn(&Record) -> bool,
    ) -> Result<Option<Stored>, DbError> {
        let group = self.group(q)?;
        for item in self.best.scan_prefix(group) {
            let (bk, _) = item.map_err(|e| self.sled_err(e))?;
            let seq = key::seq_of(&bk).ok_or_else(|| self.corrupt("best", &bk, "short key"))?;
            let s = self
                .get(&group, seq)?
                .ok_or_else(|| self.corrupt("best", &bk, "index entry without a record"))?;
            if keep(&s.record) {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The preferred record of a query ([`crate::prefer`]: current code first, the
    /// newest confirmation round over the records measured before it, then the lowest
    /// cost), if any is measured.
    pub fn preferred_best(&self, q: &Query<'_>) -> Result<Option<Stored>, DbError> {
        let mut all = self.records_of(q)?;
        Ok(crate::prefer::preferred(&all, |s| &s.record).map(|i| all.swap_remove(i)))
    }

    /// Every record of one (workload, target, device), in insertion order.
    pub fn records_of(&self, q: &Query<'_>) -> Result<Vec<Stored>, DbError> {
        let group = self.group(q)?;
        self.scan(&group).collect()
    }

    /// Every record of a workload, on every target and device.
    pub fn records_of_workload(&self, workload: &WorkloadKey) -> Result<Vec<Stored>, DbError> {
        match key::workload_prefix(workload) {
            Some(prefix) => self.scan(&prefix).collect(),
            None => Ok(Vec::new()),
        }
    }

    /// The number of failed records per error kind (kinds without failures are
    /// absent), over the whole database or one workload.
    pub fn error_counts(
        &self,
        workload: Option<&WorkloadKey>,
    ) -> Result<BTreeMap<ErrorKind, usize>, DbError> {
        let prefix: Vec<u8> = match workload {
            Some(w) => match key::workload_prefix(w) {
                Some(p) => p.to_vec(),
                None => return Ok(BTreeMap::new()),
            },
            None => Vec::new(),
        };
        let mut counts = BTreeMap::new();
        for s in self.scan(&prefix) {
            if let Some(kind) = s?.record.error_kind() {
                *counts.entry(kind).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// Whether `trace` was already measured (successfully or not) for this workload,
    /// target and device, so a resumed run can skip it.
    pub fn is_measured(&self, q: &Query<'_>, trace: &Trace) -> Result<bool, DbError> {
        let group = self.group(q)?;
        let prefix = key::measured_prefix(&group, &trace.to_json());
        for item in self.measured.scan_prefix(prefix) {
            let (mk, _) = item.map_err(|e| self.sled_err(e))?;
            // The trace hash is 64 bits: confirm with the stored record.
            let seq = key::seq_of(&mk).ok_or_else(|| self.corrupt("measured", &mk, "short key"))?;
            if let Some(s) = self.get(&group, seq)? {
                if s.record.trace == *trace {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Whether a record equal to `record` in every field is stored (import skips
    /// those, so importing a file twice adds nothing).
    pub fn contains(&self, record: &Record) -> Result<bool, DbError> {
        let group = Self::group_of(record)?;
        let prefix = key::measured_prefix(&group, &record.trace_json());
        for item in self.measured.scan_prefix(prefix) {
            let (mk, _) = item.map_err(|e| self.sled_err(e))?;
            let seq = key::seq_of(&mk).ok_or_else(|| self.corrupt("measured", &mk, "short key"))?;
            if let Some(s) = self.get(&group, seq)? {
                if s.record == *record {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn get(&self, group: &[u8; GROUP_LEN], seq: u64) -> Result<Option<Stored>, DbError> {
        let rk = key::record_key(group, seq);
        match self.records.get(rk).map_err(|e| self.sled_err(e))? {
            Some(v) => Ok(Some(self.decode(&rk, &v)?)),
            None => Ok(None),
        }
    }

    /// Checks the whole database: every record decodes and validates, its key matches
    /// its content, and the `best` and `measured` indexes hold exactly one entry per
    /// (measured) record. Returns the number of records.
    pub fn check(&self) -> Result<usize, DbError> {
        let mut expected_best = std::collections::BTreeSet::new();
        let mut expected_measured = std::collections::BTreeSet::new();
        let mut n = 0;
        for item in self.records.iter() {
            let (k, v) = item.map_err(|e| self.sled_err(e))?;
            let s = self.decode(&k, &v)?;
            let group = Self::group_of(&s.record)?;
            if let Some(m) = s.record.cost() {
                expected_best.insert(key::best_key(&group, m, s.seq).to_vec());
            }
            expected_measured
                .insert(key::measured_key(&group, &s.record.trace_json(), s.seq).to_vec());
            n += 1;
        }
        for (tree, name, expected) in [
            (&self.best, "best", &expected_best),
            (&self.measured, "measured", &expected_measured),
        ] {
            let mut count = 0;
            for item in tree.iter() {
                let (k, _) = item.map_err(|e| self.sled_err(e))?;
                if !expected.contains(&k[..]) {
                    return Err(self.corrupt(name, &k, "index entry without a matching record"));
                }
                count += 1;
            }
            if count != expected.len() {
                return Err(self.corrupt(
                    name,
                    &[],
                    format!("{} index entries for {} records", count, expected.len()),
                ));
            }
        }
        Ok(n)
    }

    /// Writes `bytes` as the raw value of record `seq` of the record's group, bypassing
    /// validation: for tests of corrupt databases only.
    #[doc(hidden)]
    pub fn corrupt_record_for_tests(
        &self,
        record: &Record,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), DbError> {
        let group = Self::group_of(record)?;
        self.records
            .insert(key::record_key(&group, seq), bytes)
            .map_err(|e| self.sled_err(e))?;
        self.flush()
    }
}
