//! Evaluation helpers.

/// The index of the largest value of each row of `logits` (`rows × classes`, row-major).
pub fn argmax_rows(logits: &[f32], classes: usize) -> Vec<usize> {
    logits
        .chunks(classes.max(1))
        .map(|row| (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0))
        .collect()
}

/// How many of `predictions` equal `labels`.
pub fn correct(predictions: &[usize], labels: &[usize]) -> usize {
    predictions.iter().zip(labels).filter(|(p, l)| p == l).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_and_count() {
        let predictions = argmax_rows(&[0.1, 0.9, 0.0, 2.0, -1.0, 1.0], 3);
        assert_eq!(predictions, vec![1, 0]);
        assert_eq!(correct(&predictions, &[1, 2]), 1);
    }
}
