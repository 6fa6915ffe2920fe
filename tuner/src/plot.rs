//! The tuning curve (best cost vs trial) as an SVG, drawn with plotters.

use crate::tune_cmd::Summary;
use plotters::prelude::*;
use std::path::Path;

/// Draws one line per workload: best cost so far after each trial.
pub fn tuning_curve(sums: &[Summary], path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let max_trials = sums.iter().map(|s| s.curve.len()).max().unwrap_or(1).max(1);
    let ys: Vec<f64> = sums
        .iter()
        .flat_map(|s| s.curve.iter().flatten().copied())
        .collect();
    let (lo, hi) = ys
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), y| (a.min(*y), b.max(*y)));
    let (lo, hi) = if ys.is_empty() {
        (0.0, 1.0)
    } else {
        (lo * 0.9, hi * 1.1)
    };
    let unit = sums.first().map(|s| s.unit.as_str()).unwrap_or("seconds");
    let mut chart = ChartBuilder::on(&root)
        .caption("grim tuning curve (best so far)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(1usize..max_trials, lo..hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("trial")
        .y_desc(if unit == "instructions" {
            "instructions per run"
        } else {
            "seconds per run"
        })
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in sums.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let pts: Vec<(usize, f64)> = s
            .curve
            .iter()
            .enumerate()
            .filter_map(|(k, c)| c.map(|c| (k + 1, c)))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.workload.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
