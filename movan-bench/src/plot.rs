//! The sweep as an SVG: latency percentiles (left) and sync server CPU (right) against players.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Point;

/// A line: its legend, colour and the value it plots.
type Series = (&'static str, RGBColor, fn(&Point) -> f64);

/// Draws `points` into an SVG at `path`.
pub fn draw(points: &[Point], title: &str, path: &Path) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (left, right) = root.split_horizontally(600);
    let max_players = points.iter().map(|p| p.players).max().unwrap_or(1) as f64 * 1.05;

    let max_latency = points.iter().map(|p| p.latency_ms.p99).fold(10.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("action → frame latency (ms)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_players, 0.0..max_latency)?;
    chart.configure_mesh().x_desc("players").y_desc("ms").draw()?;
    let series: [Series; 3] =
        [("p50", BLUE, |p| p.latency_ms.p50), ("p90", GREEN, |p| p.latency_ms.p90), ("p99", RED, |p| p.latency_ms.p99)];
    for (name, color, value) in series {
        let data: Vec<(f64, f64)> = points.iter().map(|p| (p.players as f64, value(p))).collect();
        chart
            .draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(data.into_iter().map(|xy| Circle::new(xy, 4, color.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE).draw()?;

    let cpu: Vec<(f64, f64)> =
        points.iter().filter_map(|p| p.server_cpu_percent.map(|c| (p.players as f64, c))).collect();
    let max_cpu = cpu.iter().map(|(_, c)| *c).fold(10.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption("sync server CPU (% of one core)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max_players, 0.0..max_cpu)?;
    chart.configure_mesh().x_desc("players").y_desc("%").draw()?;
    chart.draw_series(LineSeries::new(cpu.clone(), MAGENTA.stroke_width(2)))?;
    chart.draw_series(cpu.into_iter().map(|xy| Circle::new(xy, 4, MAGENTA.filled())))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentiles;

    #[test]
    fn draws_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.svg");
        let point = |players, p99| Point {
            players,
            latency_ms: Percentiles { count: 10, p50: 30.0, p90: 40.0, p99, max: 80.0 },
            server_cpu_percent: Some(players as f64 / 40.0),
            ..Point::default()
        };
        draw(&[point(500, 45.0), point(1000, 52.0)], "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("p99"), "{}", &svg[..200.min(svg.len())]);
    }
}
