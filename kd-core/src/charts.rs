//! Line charts of training curves (loss terms, test errors per epoch), written as SVG and PNG
//! with plotters.
//!
//! Text is laid out with a system TrueType font: `$KD_FONT`, else DejaVu Sans (Debian's
//! `fonts-dejavu-core`). Files are written under a temporary name and renamed into place.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// No font to lay out text with.
    #[error("no font for chart text: {tried}; install one (Debian: `apt-get install -y fonts-dejavu-core`) or set KD_FONT to a .ttf file")]
    NoFont {
        /// The paths that were tried.
        tried: String,
    },
    /// Drawing or writing failed.
    #[error("{path}: {message}")]
    Draw {
        /// The chart file.
        path: PathBuf,
        /// What plotters or the file system said.
        message: String,
    },
}

/// One named line: `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points, in x order.
    pub points: Vec<(f64, f64)>,
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = REGISTERED.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("KD_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let tried = candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        let bytes = candidates.iter().find_map(|p| std::fs::read(p).ok()).ok_or_else(|| tried.clone())?;
        // plotters keeps registered fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).map_err(|_| format!("{tried} (not a usable TrueType font)"))
    });
    result.clone().map_err(|tried| ChartError::NoFont { tried })
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, axes: (&str, &str), series: &[Series]) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x_min, x_max, y_min, y_max) = (x_min.min(x), x_max.max(x), y_min.min(y), y_max.max(y));
    }
    if x_min > x_max {
        (x_min, x_max, y_min, y_max) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-9);
    let x_range = if x_max > x_min { x_min..x_max } else { x_min - 0.5..x_max + 0.5 };
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, (y_min - pad)..(y_max + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(axes.0)
        .y_desc(axes.1)
        .draw()
        .map_err(|e| e.to_string())?;
    for (line, color) in series.iter().zip(PALETTE.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(line.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Draws `series` as `stem.svg` and `stem.png` (800 × 480) and returns both paths.
pub fn line_chart(stem: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<[PathBuf; 2], ChartError> {
    register_font()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    for (path, is_svg) in [(&svg, true), (&png, false)] {
        let temporary = path.with_extension(if is_svg { "tmp.svg" } else { "tmp.png" });
        let drawn = if is_svg {
            draw(
                SVGBackend::new(&temporary, (800, 480)).into_drawing_area(),
                title,
                (x_label, y_label),
                series,
            )
        } else {
            draw(
                BitMapBackend::new(&temporary, (800, 480)).into_drawing_area(),
                title,
                (x_label, y_label),
                series,
            )
        };
        drawn
            .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| e.to_string()))
            .map_err(|message| ChartError::Draw {
                path: path.clone(),
                message,
            })?;
    }
    Ok([svg, png])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_and_a_png_that_hold_the_series() {
        let dir = tempfile::tempdir().expect("tempdir");
        let series = [
            Series {
                name: "teacher".into(),
                points: vec![(1.0, 300.0), (2.0, 200.0), (3.0, 150.0)],
            },
            Series {
                name: "student".into(),
                points: vec![(1.0, 350.0), (2.0, 260.0), (3.0, 180.0)],
            },
        ];
        let [svg, png] = line_chart(&dir.path().join("errors"), "test errors", "epoch", "errors", &series).expect("chart");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(
            text.starts_with("<svg") && text.contains("teacher") && text.contains("test errors"),
            "{}",
            &text[..200.min(text.len())]
        );
        let bytes = std::fs::read(&png).expect("png");
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 5_000, "a drawn chart, not a blank file");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 2, "no temporary files left");
    }
}
