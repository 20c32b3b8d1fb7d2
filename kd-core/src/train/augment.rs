//! Data augmentation of MNIST digits: Hinton et al.'s ±2 px [`jitter`], and Simard et al.'s
//! random affine and elastic [`distort`]ion (Simard, Steinkraus & Platt 2003, "Best practices
//! for convolutional neural networks applied to visual document analysis", §2).
//!
//! [`Augmentation`] names either, so a recipe can carry its choice.

use rand::rngs::StdRng;
use rand::Rng;

/// How a training batch's images are augmented.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Augmentation {
    /// A whole-pixel shift in `−max..=max` on each axis ([`jitter`]).
    Jitter {
        /// The largest shift, in pixels.
        max: i32,
    },
    /// A random affine and elastic distortion ([`distort`]).
    Distort(Distortion),
}

impl Augmentation {
    /// Hinton et al.'s ±2 px jitter.
    pub const HINTON_JITTER: Augmentation = Augmentation::Jitter { max: 2 };

    /// Augments every `height × width` image of `pixels` in place, filling uncovered pixels
    /// with `background`; the draws come from `rng`.
    pub fn apply(&self, pixels: &mut [f32], height: usize, width: usize, background: f32, rng: &mut StdRng) {
        match self {
            Augmentation::Jitter { max } => jitter(pixels, height, width, *max, background, rng),
            Augmentation::Distort(bounds) => distort(pixels, height, width, bounds, background, rng),
        }
    }
}

/// The bounds of [`distort`]'s random draws. Each image gets its own rotation, scale and
/// shift, drawn uniformly within the bounds, and its own elastic field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Distortion {
    /// Rotation in `−max_degrees..=max_degrees`.
    pub max_degrees: f32,
    /// Scale in `1 − max_scale..=1 + max_scale`, on each axis independently.
    pub max_scale: f32,
    /// Shift in `−max_shift..=max_shift` pixels on each axis (sub-pixel, bilinear).
    pub max_shift: f32,
    /// Simard's α: the elastic field's strength in pixels (0 turns it off).
    pub elastic_alpha: f32,
    /// Simard's σ: the Gaussian smoothing of the elastic field, in pixels.
    pub elastic_sigma: f32,
}

/// Shifts every `height × width` image of `pixels` by a random offset in `−max..=max` pixels
/// on each axis (Hinton et al.'s ±2 px jitter), filling uncovered pixels with `background`.
/// The offsets come from `rng`, so a seeded run is reproducible.
pub fn jitter(pixels: &mut [f32], height: usize, width: usize, max: i32, background: f32, rng: &mut StdRng) {
    let size = height * width;
    let mut shifted = vec![background; size];
    for image in pixels.chunks_mut(size) {
        let (dy, dx) = (rng.gen_range(-max..=max), rng.gen_range(-max..=max));
        shifted.iter_mut().for_each(|p| *p = background);
        for y in 0..height as i32 {
            let source_y = y - dy;
            if source_y < 0 || source_y >= height as i32 {
                continue;
            }
            for x in 0..width as i32 {
                let source_x = x - dx;
                if source_x >= 0 && source_x < width as i32 {
                    shifted[(y * width as i32 + x) as usize] = image[(source_y * width as i32 + source_x) as usize];
                }
            }
        }
        image.copy_from_slice(&shifted);
    }
}

/// Distorts every `height × width` image of `pixels` by a random affine map (rotation, scale
/// and shift about the image centre) plus Simard et al.'s elastic field: a displacement drawn
/// uniformly in `[−1, 1]` per pixel and axis, smoothed by a Gaussian of `elastic_sigma` and
/// scaled by `elastic_alpha`. Pixels are read back by bilinear interpolation; those that map
/// outside the image read `background`.
pub fn distort(pixels: &mut [f32], height: usize, width: usize, bounds: &Distortion, background: f32, rng: &mut StdRng) {
    let size = height * width;
    let kernel = gaussian_kernel(bounds.elastic_sigma);
    let mut source = vec![0.0f32; size];
    let (mut field_x, mut field_y) = (vec![0.0f32; size], vec![0.0f32; size]);
    let mut scratch = vec![0.0f32; size];
    for image in pixels.chunks_mut(size) {
        let angle = rng.gen_range(-bounds.max_degrees..=bounds.max_degrees).to_radians();
        let (scale_x, scale_y) = (
            1.0 + rng.gen_range(-bounds.max_scale..=bounds.max_scale),
            1.0 + rng.gen_range(-bounds.max_scale..=bounds.max_scale),
        );
        let (shift_x, shift_y) = (
            rng.gen_range(-bounds.max_shift..=bounds.max_shift),
            rng.gen_range(-bounds.max_shift..=bounds.max_shift),
        );
        // Without an elastic field the displacements stay the zeros they start as.
        if bounds.elastic_alpha > 0.0 {
            for field in [&mut field_x, &mut field_y] {
                field.iter_mut().for_each(|d| *d = rng.gen_range(-1.0f32..=1.0));
                smooth(field, &mut scratch, height, width, &kernel);
                field.iter_mut().for_each(|d| *d *= bounds.elastic_alpha);
            }
        }
        source.copy_from_slice(image);
        let affine = Affine {
            angle,
            scale: (scale_x, scale_y),
            shift: (shift_x, shift_y),
        };
        warp(&source, image, height, width, &affine, (&field_x, &field_y), background);
    }
}

/// One image's affine map about the centre: rotation (radians), scale and shift (x, y).
struct Affine {
    angle: f32,
    scale: (f32, f32),
    shift: (f32, f32),
}

/// Writes `image` as `source` mapped by `affine` and then displaced by `field` (x, y), read
/// back through the inverse map with bilinear interpolation.
fn warp(source: &[f32], image: &mut [f32], height: usize, width: usize, affine: &Affine, field: (&[f32], &[f32]), background: f32) {
    let (centre_y, centre_x) = ((height as f32 - 1.0) / 2.0, (width as f32 - 1.0) / 2.0);
    let (sin, cos) = affine.angle.sin_cos();
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let (u, v) = (x as f32 - centre_x - affine.shift.0, y as f32 - centre_y - affine.shift.1);
            let read_x = (cos * u + sin * v) / affine.scale.0 + centre_x + field.0[i];
            let read_y = (-sin * u + cos * v) / affine.scale.1 + centre_y + field.1[i];
            image[i] = bilinear(source, height, width, read_y, read_x, background);
        }
    }
}

/// A normalised 1-D Gaussian of standard deviation `sigma`, cut at 3σ.
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let radius = (3.0 * sigma).ceil() as i32;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|d| (-(d * d) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// Smooths a `height × width` field by the separable `kernel` (zero beyond the border).
fn smooth(field: &mut [f32], scratch: &mut [f32], height: usize, width: usize, kernel: &[f32]) {
    let radius = (kernel.len() / 2) as isize;
    let taps = |read: &dyn Fn(isize) -> Option<f32>| -> f32 {
        kernel
            .iter()
            .enumerate()
            .filter_map(|(k, w)| read(k as isize - radius).map(|v| w * v))
            .sum()
    };
    for y in 0..height {
        for x in 0..width {
            let row = &field[y * width..(y + 1) * width];
            scratch[y * width + x] = taps(&|d| row.get(usize::try_from(x as isize + d).ok()?).copied());
        }
    }
    for y in 0..height {
        for x in 0..width {
            field[y * width + x] = taps(&|d| {
                let source_y = usize::try_from(y as isize + d).ok().filter(|&s| s < height)?;
                Some(scratch[source_y * width + x])
            });
        }
    }
}

/// The bilinear interpolation of `image` at `(y, x)`; outside pixels read `background`.
fn bilinear(image: &[f32], height: usize, width: usize, y: f32, x: f32, background: f32) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let at = |row: f32, column: f32| -> f32 {
        if row < 0.0 || column < 0.0 || row >= height as f32 || column >= width as f32 {
            background
        } else {
            image[row as usize * width + column as usize]
        }
    };
    let top = at(y0, x0) * (1.0 - fx) + at(y0, x0 + 1.0) * fx;
    let bottom = at(y0 + 1.0, x0) * (1.0 - fx) + at(y0 + 1.0, x0 + 1.0) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn jitter_moves_pixels_within_the_bound_and_fills_the_border() {
        let mut image = vec![0.0f32; 25];
        image[12] = 1.0; // the centre of a 5×5 image
        let mut rng = StdRng::seed_from_u64(1);
        jitter(&mut image, 5, 5, 2, -1.0, &mut rng);
        let lit: Vec<usize> = image.iter().enumerate().filter(|(_, &v)| v == 1.0).map(|(i, _)| i).collect();
        assert_eq!(lit.len(), 1, "the pixel moved within the image");
        assert!(image.iter().all(|&v| v == 1.0 || v == 0.0 || v == -1.0));
    }
    fn digit() -> Vec<f32> {
        (0..28 * 28)
            .map(|i| if (i / 28) % 7 < 3 && (i % 28) % 5 < 2 { 1.0 } else { 0.0 })
            .collect()
    }

    fn bounds() -> Distortion {
        Distortion {
            max_degrees: 0.0,
            max_scale: 0.0,
            max_shift: 0.0,
            elastic_alpha: 0.0,
            elastic_sigma: 0.0,
        }
    }

    #[test]
    fn distort_with_zero_bounds_is_the_identity() {
        let mut image = digit();
        distort(&mut image, 28, 28, &bounds(), -1.0, &mut StdRng::seed_from_u64(3));
        assert_eq!(image, digit());
    }

    #[test]
    fn warp_by_a_quarter_turn_rotates_a_square_image() {
        let zero = vec![0.0; 28 * 28];
        for (angle, clockwise) in [(std::f32::consts::FRAC_PI_2, true), (-std::f32::consts::FRAC_PI_2, false)] {
            let mut image = vec![0.0; 28 * 28];
            let affine = Affine {
                angle,
                scale: (1.0, 1.0),
                shift: (0.0, 0.0),
            };
            warp(&digit(), &mut image, 28, 28, &affine, (&zero, &zero), -1.0);
            let expected = rotate_quarter(&digit(), clockwise);
            assert!(expected.iter().zip(&image).all(|(a, b)| (a - b).abs() < 1e-3), "angle {angle}");
        }
    }

    fn rotate_quarter(image: &[f32], clockwise: bool) -> Vec<f32> {
        let mut out = vec![0.0; 28 * 28];
        for y in 0..28 {
            for x in 0..28 {
                let (source_y, source_x) = if clockwise { (27 - x, y) } else { (x, 27 - y) };
                out[y * 28 + x] = image[source_y * 28 + source_x];
            }
        }
        out
    }

    #[test]
    fn distort_keeps_values_within_the_image_range_and_moves_ink() {
        let mut image = digit();
        let strong = Distortion {
            max_degrees: 15.0,
            max_scale: 0.15,
            max_shift: 2.0,
            elastic_alpha: 34.0,
            elastic_sigma: 4.0,
        };
        distort(&mut image, 28, 28, &strong, 0.0, &mut StdRng::seed_from_u64(5));
        assert!(image.iter().all(|&v| (-1e-6..=1.0 + 1e-6).contains(&v)));
        assert_ne!(image, digit());
        let ink: f32 = image.iter().sum();
        let original: f32 = digit().iter().sum();
        assert!(ink > 0.5 * original && ink < 1.5 * original, "ink {ink} against {original}");
    }

    #[test]
    fn gaussian_kernel_is_normalised_and_symmetric() {
        let kernel = gaussian_kernel(4.0);
        assert_eq!(kernel.len(), 25);
        assert!((kernel.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(kernel.iter().zip(kernel.iter().rev()).all(|(a, b)| a == b));
    }
}
