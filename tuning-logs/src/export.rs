//! Portable JSON Lines files: a versioned header line, then one record per line (the
//! same JSON as in the database). Export, validated import, and merge.
//!
//! ```text
//! {"kind":"grim-tuning-log","format":1,"grim_version":"0.1.0","records":2}
//! {"format":1,"workload":{...},"target":"host","device":{...},"trace":{...},"result":{...},...}
//! {"format":1,...}
//! ```
//!
//! The header's record count lets import notice a file cut at a line boundary.

use crate::db::Database;
use crate::error::{DbError, ExportError, LineError};
use crate::key;
use crate::record::{Outcome, Record, FORMAT_VERSION, GRIM_VERSION};
use crate::target::Target;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The `kind` of the header line.
pub const HEADER_KIND: &str = "grim-tuning-log";

/// Longest accepted line, in bytes. A longer line is rejected without being held in
/// memory.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// The first line of an export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always [`HEADER_KIND`].
    pub kind: String,
    /// Format version of the file and its records.
    pub format: u32,
    /// The grim version that wrote the file.
    pub grim_version: String,
    /// Number of record lines that follow.
    pub records: u64,
}

/// Which records [`export`] writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportFilter {
    /// Only this target.
    pub target: Option<Target>,
    /// Only this device: its id (16 hex digits) or its model name.
    pub device: Option<String>,
    /// Only the best measured record of each (workload, target, device): the one
    /// [`apply_best`](crate::apply_best) would use (see [`crate::prefer`]).
    pub best_only: bool,
}

impl ExportFilter {
    fn keeps(&self, r: &Record) -> bool {
        self.target.as_ref().is_none_or(|t| *t == r.target)
            && self
                .device
                .as_deref()
                .is_none_or(|d| d == r.device.id_hex() || d == r.device.model)
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A path next to `path` with a suffix, for temporary files.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes records as an export file at `out`, which must not exist. The file appears
/// complete or not at all (written to a temporary file, synced, then renamed).
pub fn write_file<I>(out: &Path, records: I) -> Result<u64, ExportError>
where
    I: IntoIterator<Item = Result<Record, DbError>>,
{
    if out.exists() {
        return Err(ExportError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let err = io_err(out);
    let body_path = sibling(out, ".body.partial");
    let full_path = sibling(out, ".partial");
    let result = (|| {
        let mut body = BufWriter::new(std::fs::File::create(&body_path).map_err(&err)?);
        let mut count = 0u64;
        for r in records {
            serde_json::to_writer(&mut body, &r?).map_err(|e| err(e.into()))?;
            body.write_all(b"\n").map_err(&err)?;
            count += 1;
        }
        body.flush().map_err(&err)?;
        drop(body);
        let header = Header {
            kind: HEADER_KIND.to_string(),
            format: FORMAT_VERSION,
            grim_version: GRIM_VERSION.to_string(),
            records: count,
        };
        let mut full = BufWriter::new(std::fs::File::create(&full_path).map_err(&err)?);
        serde_json::to_writer(&mut full, &header).map_err(|e| err(e.into()))?;
        full.write_all(b"\n").map_err(&err)?;
        std::io::copy(
            &mut std::fs::File::open(&body_path).map_err(&err)?,
            &mut full,
        )
        .map_err(&err)?;
        let file = full.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(&err)?;
        std::fs::rename(&full_path, out).map_err(&err)?;
        Ok(count)
    })();
    let _ = std::fs::remove_file(&body_path);
    if result.is_err() {
        let _ = std::fs::remove_file(&full_path);
    }
    result
}

/// `grim-tune db export`: writes the records that pass `filter` to `out` in database
/// order (workload, target, device, insertion). Returns the number written.
pub fn export(db: &Database, out: &Path, filter: &ExportFilter) -> Result<u64, ExportError> {
    let mut selected: Vec<Record> = Vec::new();
    if filter.best_only {
        // Each group's records in turn (the database is ordered by group), then the
        // group's preferred record (see [`crate::prefer`]).
        let mut group: Option<Vec<u8>> = None;
        let mut records: Vec<Record> = Vec::new();
        let flush = |records: &mut Vec<Record>, selected: &mut Vec<Record>| {
            if let Some(i) = crate::prefer::preferred(records, |r| r) {
                selected.push(records.swap_remove(i));
            }
            records.clear();
        };
        for s in db.iter() {
            let r = s?.record;
            if !filter.keeps(&r) {
                continue;
            }
            let g = group_of(&r);
            if group.as_ref() != Some(&g) {
                flush(&mut records, &mut selected);
                group = Some(g);
            }
            records.push(r);
        }
        flush(&mut records, &mut selected);
        write_file(out, selected.into_iter().map(Ok))
    } else {
        // Streamed: records are written as they are read.
        let records = db.iter().filter_map(|s| match s {
            Ok(s) if filter.keeps(&s.record) => Some(Ok(s.record)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        });
        write_file(out, records)
    }
}

fn group_of(r: &Record) -> Vec<u8> {
    let w = key::workload_prefix(&r.workload.key()).unwrap_or([0; 16]);
    key::group_prefix(&w, r.target.id(), r.device.id()).to_vec()
}

/// One line read with a length cap.
enum Line {
    /// The line's bytes, without the newline.
    Text,
    /// The line was longer than the cap; its bytes were skipped.
    TooLong(u64),
}

/// Reads the next line into `buf` (cleared first), holding at most `max` bytes.
/// `None` at end of file.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<Line>> {
    buf.clear();
    let mut total: u64 = 0;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(if !any {
                None
            } else if total > max as u64 {
                Some(Line::TooLong(total))
            } else {
                Some(Line::Text)
            });
        }
        any = true;
        let (part, found) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], true),
            None => (chunk, false),
        };
        let len = part.len();
        if total + len as u64 <= max as u64 {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        total += len as u64;
        reader.consume(len + usize::from(found));
        if found {
            return Ok(Some(if total > max as u64 {
                Line::TooLong(total)
            } else {
                Line::Text
            }));
        }
    }
}

/// The records of a valid file and the bad lines of an invalid one.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    /// The header.
    pub header: Header,
    /// Every valid record with its line number.
    pub records: Vec<(usize, Record)>,
    /// Every bad line, in file order.
    pub bad: Vec<LineError>,
}

/// Reads and validates a whole export file. A missing or unusable header (or a newer
/// format) is an error for the whole file; bad record lines are collected in
/// [`ParsedFile::bad`] with their line numbers and reasons.
pub fn read_file(path: &Path) -> Result<ParsedFile, ExportError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    read_from(
        path,
        BufReader::with_capacity(1 << 16, file),
        MAX_LINE_BYTES,
    )
}

fn bad_file(path: &Path, line: usize, reason: String) -> ExportError {
    ExportError::BadFile {
        path: path.to_path_buf(),
        error: LineError { line, reason },
    }
}

/// [`read_file`] over any reader, with a line cap (for tests).
pub fn read_from<R: Read>(
    path: &Path,
    reader: R,
    max_line: usize,
) -> Result<ParsedFile, ExportError> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut header: Option<Header> = None;
    let mut records = Vec::new();
    let mut bad = Vec::new();
    let mut line_no = 0usize;
    let mut record_lines = 0u64;
    while let Some(line) =
        read_line_capped(&mut reader, &mut buf, max_line).map_err(io_err(path))?
    {
        line_no += 1;
        let text = match line {
            Line::TooLong(n) => Err(format!(
                "line is {n} bytes long, more than the limit of {max_line} bytes"
            )),
            Line::Text => std::str::from_utf8(&buf).map_err(|e| {
                format!(
                    "not UTF-8 text (invalid byte at column {})",
                    e.valid_up_to() + 1
                )
            }),
        };
        let text = text.map(|t| t.strip_suffix('\r').unwrap_or(t));
        if matches!(&text, Ok(t) if t.trim().is_empty()) {
            continue; // blank lines carry nothing; the header's count catches loss
        }
        match &header {
            None => {
                let h = text.and_then(parse_header).map_err(|reason| {
                    bad_file(
                        path,
                        line_no,
                        format!("not a grim tuning log header: {reason}"),
                    )
                })?;
                if h.format > FORMAT_VERSION {
                    return Err(bad_file(
                        path,
                        line_no,
                        format!(
                            "file format version {} is newer than this grim supports (version {FORMAT_VERSION}); use a newer grim-tune",
                            h.format
                        ),
                    ));
                }
                header = Some(h);
            }
            Some(_) => {
                record_lines += 1;
                match text.and_then(parse_record) {
                    Ok(r) => records.push((line_no, r)),
                    Err(reason) => bad.push(LineError {
                        line: line_no,
                        reason,
                    }),
                }
            }
        }
    }
    let header = header.ok_or_else(|| {
        bad_file(
            path,
            1,
            "empty file: expected a grim tuning log header".to_string(),
        )
    })?;
    if record_lines != header.records {
        bad.push(LineError {
            line: line_no + 1,
            reason: format!(
                "end of file after {record_lines} record line(s), but the header announces {}: the file is truncated or was edited",
                header.records
            ),
        });
    }
    Ok(ParsedFile {
        header,
        records,
        bad,
    })
}

/// Describes a serde_json error without its own "line 1" (every line is parsed alone).
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    if e.column() > 0 {
        format!("{msg} (column {})", e.column())
    } else {
        msg
    }
}

fn parse_header(text: &str) -> Result<Header, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| json_reason(&e))?;
    if v.get("kind").and_then(|k| k.as_str()) != Some(HEADER_KIND) {
        return Err(format!(
            "expected an object with \"kind\": \"{HEADER_KIND}\""
        ));
    }
    // Check the version before the fields: a newer header may have others.
    if let Some(f) = v.get("format").and_then(|f| f.as_u64()) {
        if f > u64::from(FORMAT_VERSION) {
            return Ok(Header {
                kind: HEADER_KIND.to_string(),
                format: u32::try_from(f).unwrap_or(u32::MAX),
                grim_version: String::new(),
                records: 0,
            });
        }
    }
    let h: Header = serde_path_to_error::deserialize(v)
        .map_err(|e| format!("field `{}`: {}", e.path(), e.inner()))?;
    if h.format == 0 {
        return Err("format version 0 does not exist".to_string());
    }
    Ok(h)
}

/// Parses and validates one record line.
fn parse_record(text: &str) -> Result<Record, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| json_reason(&e))?;
    if !v.is_object() {
        return Err("expected a JSON object (a record)".to_string());
    }
    match v.get("format").map(|f| f.as_u64()) {
        Some(Some(f)) if f > u64::from(FORMAT_VERSION) => {
            return Err(format!(
            "record format version {f} is newer than this grim supports (version {FORMAT_VERSION})"
        ))
        }
        _ => {}
    }
    // From the text, not the Value, so duplicate fields are caught.
    let mut de = serde_json::Deserializer::from_str(text);
    let record: Record = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = json_reason(e.inner());
        if path == "." {
            inner
        } else {
            format!("field `{path}`: {inner}")
        }
    })?;
    // Types this crate does not own (the trace) ignore unknown fields: compare keys.
    let canonical = serde_json::to_value(&record).map_err(|e| e.to_string())?;
    if let Some(field) = unknown_field(&v, &canonical, String::new()) {
        return Err(format!("unknown field `{field}`"));
    }
    record.validate().map_err(|e| e.to_string())?;
    Ok(record)
}

/// The path of the first object key in `input` that `canonical` lacks.
fn unknown_field(
    input: &serde_json::Value,
    canonical: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match (input, canonical) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, av)| match b.get(k) {
            None => Some(join(k)),
            Some(bv) => unknown_field(av, bv, join(k)),
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (av, bv))| unknown_field(av, bv, format!("{path}[{i}]"))),
        _ => None,
    }
}

/// What [`import`] did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportReport {
    /// Records added.
    pub imported: usize,
    /// Records skipped because an identical one was stored already.
    pub duplicates: usize,
    /// Bad lines skipped (only with `skip_bad`).
    pub skipped: Vec<LineError>,
}

/// `grim-tune db import`: validates every line of `file` first. With bad lines and
/// without `skip_bad`, nothing is imported and every bad line is listed
/// ([`ExportError::BadLines`]); with `skip_bad` the good records are imported and the
/// bad lines reported. Records identical to stored ones are skipped, so importing a
/// file twice (or again after an interrupted import) adds nothing. The import is
/// flushed before this returns.
pub fn import(db: &Database, file: &Path, skip_bad: bool) -> Result<ImportReport, ExportError> {
    import_parsed(db, file, read_file(file)?, skip_bad)
}

/// [`import`] of a file already read with [`read_file`] (so a caller can validate it
/// before opening the database).
pub fn import_parsed(
    db: &Database,
    file: &Path,
    parsed: ParsedFile,
    skip_bad: bool,
) -> Result<ImportReport, ExportError> {
    if !parsed.bad.is_empty() && !skip_bad {
        return Err(ExportError::BadLines {
            path: file.to_path_buf(),
            errors: parsed.bad,
        });
    }
    let mut report = ImportReport {
        skipped: parsed.bad,
        ..ImportReport::default()
    };
    for (_, r) in &parsed.records {
        if db.contains(r)? {
            report.duplicates += 1;
        } else {
            db.insert_unflushed(r)?;
            report.imported += 1;
        }
    }
    db.flush()?;
    Ok(report)
}

/// Identity of a record for merging: workload, target, device, trace and confirmation
/// round (a round's record is kept beside the trace's single measurements: it is what
/// decides the best, see [`crate::prefer`]).
fn identity(r: &Record) -> (Vec<u8>, String, Option<u64>) {
    (
        group_of(r),
        r.trace_json(),
        r.confirmation.as_ref().map(|c| c.round_unix_ms),
    )
}

/// Which of two records with the same identity a merge keeps: one measured on the
/// code this build generates ([`Record::is_current`]) over an older one, then a
/// measured one over a failed one, then the lower median, then the earlier, then the
/// smaller JSON, so the result does not depend on the order of the inputs.
fn preferred(a: &Record, b: &Record) -> Ordering {
    let rank = |r: &Record| match &r.result {
        Outcome::Measured(m) => (0u8, m.instructions.map(|n| n as f64).unwrap_or(m.median_s)),
        Outcome::Error(_) => (1u8, 0.0),
    };
    let (ra, rb) = (rank(a), rank(b));
    b.is_current()
        .cmp(&a.is_current())
        .then(ra.0.cmp(&rb.0))
        .then(ra.1.total_cmp(&rb.1))
        .then(a.time_unix_ms.cmp(&b.time_unix_ms))
        .then_with(|| {
            let ja = serde_json::to_string(a).unwrap_or_default();
            let jb = serde_json::to_string(b).unwrap_or_default();
            ja.cmp(&jb)
        })
}

/// Records from a database directory or an export file (which must be valid).
pub fn load(path: &Path) -> Result<Vec<Record>, ExportError> {
    if path.is_dir() {
        let db = Database::open_existing(path)?;
        let records: Result<Vec<Record>, DbError> =
            db.iter().map(|s| s.map(|s| s.record)).collect();
        Ok(records?)
    } else {
        let parsed = read_file(path)?;
        if !parsed.bad.is_empty() {
            return Err(ExportError::BadLines {
                path: path.to_path_buf(),
                errors: parsed.bad,
            });
        }
        Ok(parsed.records.into_iter().map(|(_, r)| r).collect())
    }
}

/// Merges record sets, keeping one record per workload, target, device and trace
/// (see [`preferred`]), and per confirmation round. The result is ordered by workload, target, device, then time.
pub fn merge_records<I: IntoIterator<Item = Record>>(inputs: I) -> Vec<Record> {
    let mut by_id: BTreeMap<(Vec<u8>, String, Option<u64>), Record> = BTreeMap::new();
    for r in inputs {
        match by_id.entry(identity(&r)) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(r);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => {
                if preferred(&r, o.get()) == Ordering::Less {
                    o.insert(r);
                }
            }
        }
    }
    type SortKey = (Vec<u8>, u64, String);
    let mut out: Vec<(SortKey, Record)> = by_id
        .into_iter()
        .map(|((g, t, _), r)| ((g, r.time_unix_ms, t), r))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, r)| r).collect()
}

/// What [`merge`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeReport {
    /// Records read from the inputs.
    pub read: usize,
    /// Records written.
    pub written: usize,
}

/// `grim-tune db merge A B --out C`: each input is a database directory or an export
/// file; `out` (which must not exist) is an export file when it ends in `.jsonl`, a new
/// database otherwise.
pub fn merge(inputs: &[&Path], out: &Path) -> Result<MergeReport, ExportError> {
    if out.exists() {
        return Err(ExportError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let mut all = Vec::new();
    for p in inputs {
        all.extend(load(p)?);
    }
    let read = all.len();
    let merged = merge_records(all);
    let written = merged.len();
    if out.extension().is_some_and(|e| e == "jsonl") {
        write_file(out, merged.into_iter().map(Ok))?;
    } else {
        let db = Database::open(out)?;
        for r in &merged {
            db.insert_unflushed(r)?;
        }
        db.flush()?;
    }
    Ok(MergeReport { read, written })
}
