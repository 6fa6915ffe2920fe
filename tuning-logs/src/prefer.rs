//! Which record of one (workload, target, device) is the best: the rule that
//! [`crate::apply_best`], `grim-tune db show` and the tuner's report share.
//!
//! A single measurement of a candidate on a shared or throttling device can be lucky:
//! picked by the lowest median alone, the best record is often the luckiest one, not
//! the fastest schedule. The tuner therefore ends a run with a *confirmation round*:
//! its best candidates (and the best stored record) measured again in turn, several
//! times each, one record per candidate carrying a [`Confirmation`]. The rule:
//!
//! 1. Only records measured on the code this build generates ([`Record::is_current`])
//!    count, when there are any; otherwise all measured records.
//! 2. If any of those belongs to a confirmation round, the newest round supersedes
//!    every record measured before it: the candidates are that round's records and the
//!    unconfirmed records measured after the round started (a later run without a
//!    round still competes, on its single measurements).
//! 3. The lowest cost wins ([`Record::cost`]: the median, or the instruction count on
//!    emulated devices); ties go to the earlier record.
//!
//! Without confirmation rounds this is the lowest cost among current records, else
//! among all, as before rounds existed.

use crate::record::{Confirmation, Record};

/// The index of the preferred record of `records` (one workload, target and device)
/// under the rule in the [module docs](self), or `None` when none is measured.
/// `record` reads the [`Record`] out of an item; ties go to the earlier item.
pub fn preferred<T>(items: &[T], record: impl Fn(&T) -> &Record) -> Option<usize> {
    let measured: Vec<usize> = (0..items.len())
        .filter(|&i| record(&items[i]).cost().is_some())
        .collect();
    let current: Vec<usize> = measured
        .iter()
        .copied()
        .filter(|&i| record(&items[i]).is_current())
        .collect();
    let pool = if current.is_empty() {
        measured
    } else {
        current
    };
    let newest_round = pool
        .iter()
        .filter_map(|&i| record(&items[i]).confirmation.as_ref())
        .map(|c: &Confirmation| c.round_unix_ms)
        .max();
    let candidates: Vec<usize> = match newest_round {
        None => pool,
        Some(round) => pool
            .into_iter()
            .filter(|&i| {
                let r = record(&items[i]);
                match &r.confirmation {
                    Some(c) => c.round_unix_ms == round,
                    None => r.time_unix_ms > round,
                }
            })
            .collect(),
    };
    candidates.into_iter().min_by(|&a, &b| {
        let cost = |i: usize| record(&items[i]).cost().unwrap_or(f64::INFINITY);
        cost(a).total_cmp(&cost(b)).then(a.cmp(&b))
    })
}
