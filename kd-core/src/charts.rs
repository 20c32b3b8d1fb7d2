//! Charts with plotters: line charts of training curves (loss terms, test errors per epoch)
//! written as SVG and PNG, and [`Figure`]s (line and grouped-bar charts, image grids) that a
//! notebook shows inline.
//!
//! Text is laid out with a system TrueType font: `$KD_FONT`, else DejaVu Sans (Debian's
//! `fonts-dejavu-core`). Files are written under a temporary name and renamed into place.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The plotters this module draws with, for custom [`svg_figure`]s.
pub use plotters;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// No font to lay out text with.
    #[error("no font for chart text: {tried}; install one (Debian: `apt-get install -y fonts-dejavu-core`) or set KD_FONT to a .ttf file")]
    NoFont {
        /// The paths that were tried.
        tried: String,
    },
    /// Writing a chart file failed.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// Drawing failed.
    #[error("{path}: cannot draw: {message}")]
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

/// matplotlib's "tab10": ten series before a colour repeats.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn draw_lines<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, axes: (&str, &str), series: &[Series]) -> Result<(), String>
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
            draw_lines(
                SVGBackend::new(&temporary, (800, 480)).into_drawing_area(),
                title,
                (x_label, y_label),
                series,
            )
        } else {
            draw_lines(
                BitMapBackend::new(&temporary, (800, 480)).into_drawing_area(),
                title,
                (x_label, y_label),
                series,
            )
        };
        drawn.map_err(|message| ChartError::Draw {
            path: temporary.clone(),
            message,
        })?;
        std::fs::rename(&temporary, path).map_err(crate::files::FileError::at(path, "replace"))?;
    }
    Ok([svg, png])
}

/// A chart for a notebook. evcxr shows a cell's last value through its `evcxr_display`, so a
/// cell that ends in a `Figure` renders it inline (SVG for charts, PNG for image grids).
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// An SVG document.
    Svg(String),
    /// PNG bytes.
    Png(Vec<u8>),
}

impl Figure {
    /// The MIME type and the payload evcxr expects for it (PNG as base64).
    pub fn mime_and_payload(&self) -> (&'static str, String) {
        use base64::Engine;
        match self {
            Figure::Svg(svg) => ("image/svg+xml", svg.clone()),
            Figure::Png(bytes) => ("image/png", base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    /// Prints the figure in evcxr's rich-output protocol; evcxr calls this for a cell's last value.
    pub fn evcxr_display(&self) {
        let (mime, payload) = self.mime_and_payload();
        println!("EVCXR_BEGIN_CONTENT {mime}\n{payload}\nEVCXR_END_CONTENT");
    }

    /// Writes the figure to `path` (give it the `.svg` or `.png` extension), atomically.
    pub fn save(&self, path: &Path) -> Result<(), ChartError> {
        let bytes = match self {
            Figure::Svg(svg) => svg.as_bytes(),
            Figure::Png(bytes) => bytes,
        };
        Ok(crate::files::write_atomically(path, bytes)?)
    }
}

/// A results table. In a notebook it renders as HTML (evcxr calls `evcxr_display` on a cell's
/// last value); `Display` writes it as a Markdown table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells, as many as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings and no rows.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        self.rows.push(cells.into_iter().map(|c| c.to_string()).collect());
        self
    }

    /// The table as an HTML `<table>`, cells escaped; numeric cells right-aligned.
    pub fn to_html(&self) -> String {
        let escape = |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let numeric = |text: &str| text.trim_start_matches(['+', '-', '−']).starts_with(|c: char| c.is_ascii_digit());
        let mut html = String::from("<table>\n<thead><tr>");
        for heading in &self.header {
            html += &format!("<th>{}</th>", escape(heading));
        }
        html += "</tr></thead>\n<tbody>\n";
        for row in &self.rows {
            html += "<tr>";
            for cell in row {
                let align = if numeric(cell) { " style=\"text-align:right\"" } else { "" };
                html += &format!("<td{align}>{}</td>", escape(cell));
            }
            html += "</tr>\n";
        }
        html + "</tbody>\n</table>"
    }

    /// Prints the table in evcxr's rich-output protocol, as HTML.
    pub fn evcxr_display(&self) {
        println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", self.to_html());
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "| {} |", self.header.join(" | "))?;
        writeln!(f, "|{}", "---|".repeat(self.header.len()))?;
        for row in &self.rows {
            writeln!(f, "| {} |", row.join(" | "))?;
        }
        Ok(())
    }
}

/// A custom plotters drawing as an SVG [`Figure`] of `size` pixels; `paint` draws on the area
/// (text works: the chart font is registered first).
pub fn svg_figure(
    size: (u32, u32),
    paint: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<Figure, ChartError> {
    register_font()?;
    let mut svg = String::new();
    paint(SVGBackend::with_string(&mut svg, size).into_drawing_area()).map_err(|message| ChartError::Draw {
        path: PathBuf::from("<figure>"),
        message,
    })?;
    Ok(Figure::Svg(svg))
}

/// `series` as a line chart (800 × 480 SVG).
pub fn line_figure(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<Figure, ChartError> {
    svg_figure((800, 480), |root| draw_lines(root, title, (x_label, y_label), series))
}

/// A grouped bar chart (800 × 480 SVG): one group of bars per category, one bar per series,
/// `series[j].points[i].1` the height of series `j` in category `i` (the x values are ignored).
pub fn bar_figure(title: &str, y_label: &str, categories: &[String], series: &[Series]) -> Result<Figure, ChartError> {
    svg_figure((800, 480), |root| {
        let heights = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|y| y.is_finite());
        let top = heights.fold(0.0f64, f64::max).max(1e-9) * 1.12;
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let count = categories.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5..count as f64 - 0.5, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(count)
            .x_label_formatter(&|x| {
                let index = x.round();
                let on_category = (x - index).abs() < 1e-6 && index >= 0.0;
                categories.get(index as usize).filter(|_| on_category).cloned().unwrap_or_default()
            })
            .x_label_style(("sans-serif", 13))
            .y_label_formatter(&|y| if top > 20.0 { format!("{y:.0}") } else { format!("{y:.2}") })
            .y_desc(y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / series.len().max(1) as f64;
        for (j, (bars, color)) in series.iter().zip(PALETTE.iter().cycle()).enumerate() {
            let color = *color;
            let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
            chart
                .draw_series(
                    bars.points
                        .iter()
                        .enumerate()
                        .map(|(i, &(_, y))| Rectangle::new([(left(i), 0.0), (left(i) + width * 0.92, y)], color.filled())),
                )
                .map_err(|e| e.to_string())?
                .label(bars.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
            chart
                .draw_series(bars.points.iter().enumerate().map(|(i, &(_, y))| {
                    Text::new(
                        format!("{y:.0}"),
                        (left(i) + width * 0.46, y + top * 0.005),
                        ("sans-serif", 11).into_text_style(&root).pos(Pos::new(HPos::Center, VPos::Bottom)),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    })
}

/// Grayscale images in rows, as a PNG: each row is a label and images of `height × width`
/// values in [0, 1] (values outside are clipped), drawn `scale` pixels per value.
pub fn image_grid_figure(
    title: &str,
    rows: &[(String, Vec<Vec<f32>>)],
    (height, width): (usize, usize),
    scale: usize,
) -> Result<Figure, ChartError> {
    register_font()?;
    let (label_width, title_height, gap) = (190, 34, 4);
    let columns = rows.iter().map(|(_, images)| images.len()).max().unwrap_or(0);
    let cell = (width * scale + gap, height * scale + gap);
    let size = (
        (label_width + columns * cell.0 + gap) as u32,
        (title_height + rows.len() * cell.1 + gap) as u32,
    );
    let dir = tempfile::tempdir().map_err(|e| ChartError::Draw {
        path: std::env::temp_dir(),
        message: e.to_string(),
    })?;
    let path = dir.path().join("grid.png");
    let failed = |message: String| ChartError::Draw {
        path: path.clone(),
        message,
    };
    {
        let root = BitMapBackend::new(&path, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
        root.draw(&Text::new(title.to_string(), (gap as i32, 6), ("sans-serif", 20)))
            .map_err(|e| failed(e.to_string()))?;
        for (r, (label, images)) in rows.iter().enumerate() {
            let top = title_height + r * cell.1;
            root.draw(&Text::new(
                label.clone(),
                (gap as i32, (top + cell.1 / 2 - 8) as i32),
                ("sans-serif", 15),
            ))
            .map_err(|e| failed(e.to_string()))?;
            for (c, image) in images.iter().enumerate() {
                let left = label_width + c * cell.0;
                for (i, value) in image.iter().take(height * width).enumerate() {
                    let shade = (255.0 * (1.0 - value.clamp(0.0, 1.0))).round() as u8;
                    let (y, x) = (top + (i / width) * scale, left + (i % width) * scale);
                    let square = [(x as i32, y as i32), ((x + scale) as i32, (y + scale) as i32)];
                    root.draw(&Rectangle::new(square, RGBColor(shade, shade, shade).filled()))
                        .map_err(|e| failed(e.to_string()))?;
                }
            }
        }
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    let bytes = std::fs::read(&path).map_err(|e| failed(e.to_string()))?;
    Ok(Figure::Png(bytes))
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

    #[test]
    fn figures_render_for_a_notebook() {
        let series = [Series {
            name: "alone".into(),
            points: vec![(0.0, 315.0), (1.0, 282.0)],
        }];
        let Figure::Svg(svg) = line_figure("curve", "epoch", "errors", &series).expect("line") else {
            panic!("a line chart is SVG")
        };
        assert!(svg.contains("<polyline") && svg.contains("alone"));
        let categories = vec!["kd".to_string(), "fitnet".to_string()];
        let Figure::Svg(svg) = bar_figure("methods", "errors", &categories, &series).expect("bars") else {
            panic!("a bar chart is SVG")
        };
        assert!(
            svg.contains("fitnet") && svg.contains("\n282\n"),
            "bars carry their category and value labels"
        );
        let digit: Vec<f32> = (0..16).map(|i| i as f32 / 15.0).collect();
        let grid = image_grid_figure("grid", &[("clean".into(), vec![digit.clone(), digit])], (4, 4), 3).expect("grid");
        let (mime, payload) = grid.mime_and_payload();
        assert_eq!(mime, "image/png");
        let Figure::Png(bytes) = grid else { panic!("a grid is PNG") };
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(payload.len() > bytes.len(), "base64 of the PNG");
    }

    #[test]
    fn tables_render_as_html_and_markdown() {
        let mut table = Table::new(["model", "test errors"]);
        table.row(["student <alone>", "315"]).row(["student + kd", "282"]);
        let html = table.to_html();
        assert!(html.contains("<th>test errors</th>") && html.contains("student &lt;alone&gt;"));
        assert!(html.contains("<td style=\"text-align:right\">282</td>"));
        assert_eq!(
            table.to_string(),
            "| model | test errors |\n|---|---|\n| student <alone> | 315 |\n| student + kd | 282 |\n"
        );
    }
}
