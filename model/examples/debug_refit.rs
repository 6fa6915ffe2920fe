use model::task::Task;
use std::path::Path;
fn err(d: &tir::Matrix, p: &tir::Matrix, g: &model::calibrate::Gram) -> f64 {
    let k = d.cols();
    let mut t = 0.0;
    for r in 0..d.rows() {
        let dv: Vec<f64> = (0..k).map(|c| (p.get(r, c) - d.get(r, c)) as f64).collect();
        for i in 0..k {
            if dv[i] == 0.0 {
                continue;
            }
            for j in 0..k {
                t += dv[i] * g.get(i, j) * dv[j];
            }
        }
    }
    t / g.samples() as f64
}
fn main() {
    let dense = model::zoo::mnist_cnn::load(Path::new("models")).unwrap();
    let all = model::data::mnist::load(Path::new("models")).unwrap();
    let ta = Task::Mnist {
        calibration: all.slice(0..1000),
        test: all.slice(2000..5000),
    };
    let tb = Task::Mnist {
        calibration: all.slice(1000..2000),
        test: all.slice(2000..5000),
    };
    let ga = ta.calibration_grams(&dense).unwrap();
    let gb = tb.calibration_grams(&dense).unwrap();
    let b = tir::BlockShape { rows: 32, cols: 32 };
    let i = 3;
    let d = dense.layers[i].dense(0).unwrap();
    for rate in [0.9, 0.99] {
        let mut rates = vec![0.0; 5];
        rates[i] = rate;
        for (g, ridge) in [
            (None, 0.0),
            (Some(&ga), 1e-3),
            (Some(&ga), 1e-1),
            (Some(&ga), 10.0),
        ] {
            let m = model::rates::apply_rates(&dense, b, &rates, g, ridge).unwrap();
            let p = m.layers[i].dense(0).unwrap();
            println!(
                "rate {rate} ridge {ridge} refit {}: err on A {:.4} on B {:.4}",
                g.is_some(),
                err(&d, &p, &ga[&(i, 0)]),
                err(&d, &p, &gb[&(i, 0)])
            );
        }
    }
}
