//! Pictures of training: `training_curves.png` (loss, accuracy and MSE against epoch, train and
//! validation) and the comparison's curves of several runs, drawn with plotters.

use crate::rundir::metrics::EpochRecord;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// plotters draws text with a font we embed, so no system fonts are needed.
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// One panel per metric; each series is a (label, points) pair.
pub struct Panel<'a> {
    pub title: &'a str,
    /// What x is: "epoch", or "training minutes".
    pub x_label: &'a str,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// Panels side by side, this many to a row.
const PANELS_PER_ROW: usize = 3;

/// Draws panels side by side into `path` (written to a temp file, then renamed).
pub fn draw_panels(panels: &[Panel], path: &Path) -> Result<()> {
    register_font();
    crate::atomic::write_with(path, 0o666, |temp| draw_into(panels, temp))
}

fn draw_into(panels: &[Panel], temp: &Path) -> Result<()> {
    {
        let columns = panels.len().clamp(1, PANELS_PER_ROW);
        let rows = panels.len().div_ceil(columns).max(1);
        let size = (420 * columns as u32, 340 * rows as u32);
        let root = BitMapBackend::new(temp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        for (panel, area) in panels.iter().zip(root.split_evenly((rows, columns))) {
            let points = panel.series.iter().flat_map(|(_, p)| p.iter());
            let (mut x_max, mut y_min, mut y_max) = (0.0f64, f64::MAX, f64::MIN);
            for &(x, y) in points {
                x_max = x_max.max(x);
                y_min = y_min.min(y);
                y_max = y_max.max(y);
            }
            if x_max <= 0.0 {
                x_max = 1.0;
            }
            if y_min > y_max {
                (y_min, y_max) = (0.0, 1.0);
            }
            let pad = ((y_max - y_min) * 0.05).max(1e-6);
            let mut chart = ChartBuilder::on(&area)
                .caption(panel.title, ("sans-serif", 18))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .x_desc(panel.x_label)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            for (i, (label, points)) in panel.series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| anyhow!("{e}"))?
                    .label(label)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

/// The run's curves from its metrics records.
pub fn draw_training_curves(records: &[EpochRecord], path: &Path) -> Result<()> {
    let series = |pick: fn(&EpochRecord) -> (f64, f64)| -> Vec<(String, Vec<(f64, f64)>)> {
        let train = records
            .iter()
            .map(|r| (r.epoch as f64, pick(r).0))
            .collect();
        let val = records
            .iter()
            .map(|r| (r.epoch as f64, pick(r).1))
            .collect();
        vec![("train".into(), train), ("val".into(), val)]
    };
    draw_panels(
        &[
            Panel {
                title: "total loss",
                x_label: "epoch",
                series: series(|r| (r.train.loss, r.val.loss)),
            },
            Panel {
                title: "classification accuracy",
                x_label: "epoch",
                series: series(|r| (r.train.accuracy, r.val.accuracy)),
            },
            Panel {
                title: "prediction MSE",
                x_label: "epoch",
                series: series(|r| (r.train.mse, r.val.mse)),
            },
        ],
        path,
    )
}

/// Validation loss, accuracy and MSE of several runs, one line per run: against epoch, and
/// below against training time (so a backbone that is slower per epoch shows as such).
pub fn draw_validation_comparison(
    names: &[String],
    histories: &[Vec<EpochRecord>],
    path: &Path,
) -> Result<()> {
    let series = |by_time: bool, pick: fn(&EpochRecord) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        names
            .iter()
            .zip(histories)
            .filter(|(_, h)| !h.is_empty())
            .map(|(n, h)| {
                let x = |r: &EpochRecord| match by_time {
                    true => r.elapsed_seconds / 60.0,
                    false => r.epoch as f64,
                };
                (n.clone(), h.iter().map(|r| (x(r), pick(r))).collect())
            })
            .collect()
    };
    type Metric = (&'static str, fn(&EpochRecord) -> f64);
    let metrics: [Metric; 3] = [
        ("validation loss", |r| r.val.loss),
        ("validation accuracy", |r| r.val.accuracy),
        ("validation prediction MSE", |r| r.val.mse),
    ];
    let panels: Vec<Panel> = [(false, "epoch"), (true, "training minutes")]
        .into_iter()
        .flat_map(|(by_time, x_label)| {
            metrics.iter().map(move |&(title, pick)| Panel {
                title,
                x_label,
                series: series(by_time, pick),
            })
        })
        .collect();
    draw_panels(&panels, path)
}
