//! Data augmentation: Hinton et al.'s ±2 px jitter of MNIST digits.

use rand::rngs::StdRng;
use rand::Rng;

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
}
