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

/// A chart that can be drawn on any plotters backend.
trait Drawing {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// Draws `drawing` as `stem.svg` and `stem.png`, each written under a temporary name and
/// renamed into place; returns both paths.
fn write_both(stem: &Path, drawing: &impl Drawing) -> Result<[PathBuf; 2], ChartError> {
    register_font()?;
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    for (path, is_svg) in [(&svg, true), (&png, false)] {
        let temporary = path.with_extension(if is_svg { "tmp.svg" } else { "tmp.png" });
        let drawn = if is_svg {
            drawing.draw(SVGBackend::new(&temporary, drawing.size()).into_drawing_area())
        } else {
            drawing.draw(BitMapBackend::new(&temporary, drawing.size()).into_drawing_area())
        };
        drawn.map_err(|message| ChartError::Draw {
            path: temporary.clone(),
            message,
        })?;
        std::fs::rename(&temporary, path).map_err(crate::files::FileError::at(path, "replace"))?;
    }
    Ok([svg, png])
}

struct Lines<'a> {
    title: &'a str,
    axes: (&'a str, &'a str),
    series: &'a [Series],
}

impl Drawing for Lines<'_> {
    fn size(&self) -> (u32, u32) {
        (800, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        draw_lines(root, self.title, self.axes, self.series)
    }
}

/// Draws `series` as `stem.svg` and `stem.png` (800 × 480) and returns both paths.
pub fn line_chart(stem: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<[PathBuf; 2], ChartError> {
    write_both(
        stem,
        &Lines {
            title,
            axes: (x_label, y_label),
            series,
        },
    )
}

/// One row of a [`forest_chart`]: a measured mean with its spread, and a reference value.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The row's label.
    pub label: String,
    /// The measured mean.
    pub mean: f64,
    /// The error bar's half-width (a standard deviation, say).
    pub spread: f64,
    /// A value to mark beside it (the paper's, say).
    pub reference: Option<f64>,
}

struct Forest<'a> {
    title: &'a str,
    x_label: &'a str,
    /// Names the bars and the references; `None` draws no legend (the x label says what the
    /// bars are), so that no row can hide under it.
    legend: Option<(&'a str, &'a str)>,
    /// Whether the axis takes in 0 and marks it with a line (a Δ); otherwise it fits the
    /// values alone (a dot chart).
    anchored: bool,
    rows: &'a [Interval],
}

impl Drawing for Forest<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 110 + 34 * self.rows.len().max(1) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let values = self
            .rows
            .iter()
            .flat_map(|r| [r.mean - r.spread, r.mean + r.spread].into_iter().chain(r.reference));
        let anchored = self.anchored;
        let start = if anchored {
            (0.0f64, 0.0f64)
        } else {
            (f64::INFINITY, f64::NEG_INFINITY)
        };
        let (low, high) = values
            .filter(|v| v.is_finite())
            .fold(start, |(low, high), v| (low.min(v), high.max(v)));
        let (low, high) = if low <= high { (low, high) } else { (0.0, 0.0) };
        let pad = ((high - low) * 0.08).max(1e-3 * high.abs().max(1.0));
        let count = self.rows.len().max(1);
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(330)
            .build_cartesian_2d((low - pad)..(high + pad), -0.5..count as f64 - 0.5)
            .map_err(|e| e.to_string())?;
        let labels: Vec<&str> = self.rows.iter().rev().map(|r| r.label.as_str()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(count)
            .y_label_formatter(&|y| {
                let index = y.round();
                let on_row = (y - index).abs() < 1e-6 && index >= 0.0;
                labels
                    .get(index as usize)
                    .filter(|_| on_row)
                    .map(|l| l.to_string())
                    .unwrap_or_default()
            })
            .y_label_style(("sans-serif", 13))
            .x_desc(self.x_label)
            .draw()
            .map_err(|e| e.to_string())?;
        if anchored {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, -0.5), (0.0, count as f64 - 0.5)],
                    BLACK.mix(0.5).stroke_width(1),
                )))
                .map_err(|e| e.to_string())?;
        }
        let measured = PALETTE[0];
        let paper = PALETTE[3];
        let y = |i: usize| (count - 1 - i) as f64;
        let bars =
            chart
                .draw_series(self.rows.iter().enumerate().map(|(i, r)| {
                    ErrorBar::new_horizontal(y(i), r.mean - r.spread, r.mean, r.mean + r.spread, measured.stroke_width(2), 10)
                }))
                .map_err(|e| e.to_string())?;
        let Some(legend) = self.legend else {
            return root.present().map_err(|e| e.to_string());
        };
        bars.label(legend.0)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], measured.stroke_width(2)));
        if self.rows.iter().any(|r| r.reference.is_some()) {
            chart
                .draw_series(
                    self.rows
                        .iter()
                        .enumerate()
                        .filter_map(|(i, r)| r.reference.map(|x| TriangleMarker::new((x, y(i)), 7, paper.filled()))),
                )
                .map_err(|e| e.to_string())?
                .label(legend.1)
                .legend(move |(x, y)| TriangleMarker::new((x + 10, y), 6, paper.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())
    }
}

/// A forest plot as `stem.svg` and `stem.png`: one row per [`Interval`], its mean with a
/// horizontal error bar of ± its spread, its reference marked with a triangle, and a line at 0.
/// `legend` names the bars and the triangles (left out when no row has a reference).
pub fn forest_chart(stem: &Path, title: &str, x_label: &str, legend: (&str, &str), rows: &[Interval]) -> Result<[PathBuf; 2], ChartError> {
    write_both(
        stem,
        &Forest {
            title,
            x_label,
            legend: Some(legend),
            anchored: true,
            rows,
        },
    )
}

/// A [`forest_chart`] for a notebook (SVG, its width fixed, its height growing with the rows),
/// without a legend: `x_label` says what the bars are.
pub fn forest_figure(title: &str, x_label: &str, rows: &[Interval]) -> Result<Figure, ChartError> {
    let forest = Forest {
        title,
        x_label,
        legend: None,
        anchored: true,
        rows,
    };
    svg_figure(forest.size(), |root| forest.draw(root))
}

/// One value per labelled row, a dot with ± its spread, on an axis fitted to the values (not
/// anchored at 0, so that close values stay apart); no legend, so no row is hidden.
pub fn dot_figure(title: &str, x_label: &str, rows: &[Interval]) -> Result<Figure, ChartError> {
    let dots = Forest {
        title,
        x_label,
        legend: None,
        anchored: false,
        rows,
    };
    svg_figure(dots.size(), |root| dots.draw(root))
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

    /// A dot chart fits its axis to the values, far from 0, and draws every label and no legend.
    #[test]
    fn a_dot_chart_fits_its_axis_to_the_values() {
        let rows: Vec<Interval> = [("teacher", 3.106), ("wide student", 3.223), ("narrow student", 3.674)]
            .map(|(label, mean)| Interval {
                label: label.into(),
                mean,
                spread: 0.0,
                reference: None,
            })
            .into();
        let Figure::Svg(svg) = dot_figure("bits per character", "bits / char", &rows).expect("drawn") else {
            panic!("a dot chart is an SVG");
        };
        for row in &rows {
            assert!(svg.contains(&row.label), "{} is drawn", row.label);
        }
        let ticks: Vec<f64> = svg
            .split("</text>")
            .filter_map(|chunk| chunk.rsplit('>').next()?.trim().parse().ok())
            .collect();
        assert!(ticks.len() >= 3, "the axis has numbered ticks: {ticks:?}");
        assert!(
            ticks.iter().all(|&t| (3.0..3.8).contains(&t)),
            "the axis spans the values, not 0: {ticks:?}"
        );
    }

    /// Every row's label, an error bar per row and a marker per reference reach the SVG; the
    /// rows run top to bottom in the order given.
    #[test]
    fn a_forest_chart_shows_each_row_with_its_bar_and_reference() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [
            Interval {
                label: "hinton: distilled".into(),
                mean: 20.0,
                spread: 5.0,
                reference: Some(49.3),
            },
            Interval {
                label: "born-again: generation 1".into(),
                mean: -3.0,
                spread: 2.0,
                reference: None,
            },
        ];
        let [svg, png] = forest_chart(&dir.path().join("delta"), "Δ", "improvement, %", ("kd", "paper"), &rows).expect("drawn");
        let svg = std::fs::read_to_string(svg).expect("svg");
        let first = svg.find("hinton: distilled").expect("first label");
        let second = svg.find("born-again: generation 1").expect("second label");
        let y_of = |at: usize| {
            let tag = &svg[svg[..at].rfind("<text").expect("a text element")..at];
            let y = tag.split("y=\"").nth(1).expect("a y").split('"').next().expect("its value");
            y.parse::<f64>().expect("a number")
        };
        assert!(y_of(first) < y_of(second), "the first row is drawn above the second");
        assert!(svg.contains("paper") && svg.contains("kd"), "the legend names both");
        assert!(
            svg.matches("<polygon").count() >= 2,
            "a triangle for the reference and one in the legend"
        );
        assert_eq!(&std::fs::read(png).expect("png")[1..4], b"PNG");
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
