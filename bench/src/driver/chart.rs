//! Charts (plotters, SVG): the horizontal bar charts of the report.

use std::path::Path;

pub(crate) fn bar_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    bars: &[(String, f64, bool)],
    target_line: Option<(f64, &str)>,
) -> Result<(), String> {
    use plotters::prelude::*;
    let n = bars.len();
    let height = 120 + 34 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = bars
        .iter()
        .map(|b| b.1)
        .chain(target_line.map(|t| t.0))
        .fold(0.0f64, f64::max)
        * 1.15;
    // Horizontal bars, first bar at the top.
    let row = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(230)
        .build_cartesian_2d(0f64..max.max(1e-9), 0f64..n as f64)
        .map_err(|e| e.to_string())?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| {
            let k = (*y - 0.5).round();
            if (y - 0.5 - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                labels[n - 1 - k as usize].clone()
            } else {
                String::new()
            }
        })
        .y_label_style(("sans-serif", 14))
        .x_desc(x_label)
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v, base))| {
            let color = if *base {
                RGBColor(150, 150, 150)
            } else {
                RGBColor(222, 120, 40)
            };
            Rectangle::new([(0.0, row(i) + 0.15), (*v, row(i) + 0.85)], color.filled())
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v, _))| {
            Text::new(
                format!("{v:.1}"),
                (*v + max * 0.01, row(i) + 0.7),
                ("sans-serif", 13),
            )
        }))
        .map_err(|e| e.to_string())?;
    if let Some((t, label)) = target_line {
        chart
            .draw_series(LineSeries::new(
                [(t, 0.0), (t, n as f64)],
                RED.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}
