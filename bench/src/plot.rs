//! SVG figures of the report, drawn with plotters: grim BCR's speedup over the fastest
//! dense framework vs sparsity (with the ideal `1 / (1 - s)`), and the latency of every
//! system per family at 90% sparsity.

use crate::error::BenchError;
use crate::report::Table;
use crate::systems::{system, SYSTEMS};
use plotters::prelude::*;
use std::path::Path;

/// A tick label with at most three significant digits.
fn short(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

fn perr(path: &Path, e: impl std::fmt::Display) -> BenchError {
    BenchError::Plot {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Speedup of grim BCR over the fastest dense framework vs sparsity, one line per
/// family and block size, at `threads` threads.
pub fn speedup_vs_sparsity(t: &Table, threads: u32, path: &Path) -> Result<(), BenchError> {
    // (label, points)
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for c in t.cases.iter().filter(|c| !c.case.is_dense()) {
        let label = format!("{} {}", c.case.family, c.case.block_label());
        let (Some(g), Some((_, d))) = (
            t.ms(&c.case.id, "grim-bcr", threads),
            t.fastest_dense(&c.case.id, threads),
        ) else {
            continue;
        };
        let pt = (c.case.sparsity * 100.0, d / g);
        match series.iter_mut().find(|s| s.0 == label) {
            Some(s) => s.1.push(pt),
            None => series.push((label, vec![pt])),
        }
    }
    // Lines need two points or more: single-sparsity series are drawn as points.
    let ymax = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(20.0f64, f64::max)
        * 1.3;
    let ymin = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .fold(1.0f64, f64::min)
        .max(1e-3)
        / 1.3;
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("grim BCR speedup over the fastest dense framework ({threads} thread(s))"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(45f64..97f64, (ymin..ymax).log_scale())
        .map_err(|e| perr(path, e))?;
    chart
        .configure_mesh()
        .x_desc("sparsity (%)")
        .y_desc("speedup (x, log scale)")
        .y_label_formatter(&|v| short(*v))
        .draw()
        .map_err(|e| perr(path, e))?;
    let ideal: Vec<(f64, f64)> = (50..=95)
        .map(|p| (p as f64, 1.0 / (1.0 - p as f64 / 100.0)))
        .collect();
    chart
        .draw_series(LineSeries::new(ideal, BLACK.stroke_width(1)))
        .map_err(|e| perr(path, e))?
        .label("ideal 1/(1-s)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    for (i, (label, mut pts)) in series.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| perr(path, e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| perr(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| perr(path, e))?;
    root.present().map_err(|e| perr(path, e))
}

/// Latency of every system per family (at 90% sparsity with 32x32 blocks, else the
/// family's first sparse case), `threads` threads: one panel per family, log-scale bars.
pub fn latency_per_system(t: &Table, threads: u32, path: &Path) -> Result<(), BenchError> {
    let mut panels: Vec<(String, Vec<(&'static str, f64)>)> = Vec::new();
    let mut families: Vec<&str> = t.cases.iter().map(|c| c.case.family.as_str()).collect();
    families.dedup();
    for fam in families {
        let pick = t
            .cases
            .iter()
            .filter(|c| c.case.family == fam && !c.case.is_dense())
            .min_by_key(|c| {
                let off = ((c.case.sparsity - 0.9).abs() * 1000.0) as i64;
                (off, c.case.block != Some((32, 32)))
            });
        let Some(c) = pick else { continue };
        let bars: Vec<(&'static str, f64)> = SYSTEMS
            .iter()
            .filter_map(|s| t.ms(&c.case.id, s.id, threads).map(|v| (s.id, v)))
            .collect();
        if !bars.is_empty() {
            panels.push((
                format!(
                    "{} at {:.0}%, {}",
                    fam,
                    c.case.sparsity * 100.0,
                    c.case.block_label()
                ),
                bars,
            ));
        }
    }
    let cols = 2usize;
    let rows = panels.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(path, (1100, 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| perr(path, e))?;
    let areas = root.split_evenly((rows, cols));
    for (area, (title, bars)) in areas.iter().zip(panels.iter()) {
        let lo = bars.iter().map(|b| b.1).fold(f64::MAX, f64::min) / 2.0;
        let hi = bars.iter().map(|b| b.1).fold(0.0f64, f64::max) * 2.0;
        let n = bars.len();
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{title} ({threads} thread(s))"), ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(10)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
            .map_err(|e| perr(path, e))?;
        chart
            .configure_mesh()
            .x_desc("ms per call (log)")
            .x_label_formatter(&|v| short(*v))
            .y_labels(0)
            .disable_y_mesh()
            .draw()
            .map_err(|e| perr(path, e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (id, v))| {
                let color = if *id == "grim-bcr" {
                    RED.mix(0.8)
                } else {
                    BLUE.mix(0.35)
                };
                Rectangle::new([(lo, i as f64 + 0.1), (*v, i as f64 + 0.9)], color.filled())
            }))
            .map_err(|e| perr(path, e))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (id, v))| {
                let name = system(id).map(|s| s.title).unwrap_or(id);
                Text::new(
                    format!("{name}: {v:.3} ms"),
                    (lo * 1.05, i as f64 + 0.75),
                    ("sans-serif", 12),
                )
            }))
            .map_err(|e| perr(path, e))?;
    }
    root.present().map_err(|e| perr(path, e))
}
