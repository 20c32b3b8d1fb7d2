//! The keys of `#[distill(...)]`, one constant each.

pub const TEACHER: &str = "teacher";
pub const TEMP: &str = "temp";
pub const CE_WEIGHT: &str = "ce_weight";
pub const KD_WEIGHT: &str = "kd_weight";
pub const MATCH: &str = "match";
pub const INPUT: &str = "input";
pub const DTYPE: &str = "dtype";
pub const CRATE: &str = "crate";
pub const LOGITS: &str = "logits";
pub const TEACHERS: &str = "teachers";
pub const TEACHER_WEIGHTS: &str = "teacher_weights";
pub const ENSEMBLE: &str = "ensemble";

/// Every container key, for unknown-key suggestions.
pub const CONTAINER_KEYS: [&str; 12] = [
    TEACHER,
    TEACHERS,
    TEACHER_WEIGHTS,
    ENSEMBLE,
    TEMP,
    CE_WEIGHT,
    KD_WEIGHT,
    LOGITS,
    MATCH,
    INPUT,
    DTYPE,
    CRATE,
];

pub const AVERAGE: &str = "average";
pub const EACH: &str = "each";

/// Every value `ensemble = ...` accepts.
pub const ENSEMBLES: [&str; 2] = [AVERAGE, EACH];

/// The most teachers `teachers(...)` takes (dfdx builds tuples of up to six modules).
pub const MAX_TEACHERS: usize = 6;

pub const KL: &str = "kl";
pub const REVERSE_KL: &str = "reverse_kl";
pub const JSD: &str = "jsd";
pub const TVD: &str = "tvd";
pub const DIST: &str = "dist";

/// Every divergence `logits = ...` accepts.
pub const DIVERGENCES: [&str; 5] = [KL, REVERSE_KL, JSD, TVD, DIST];

pub const BETA: &str = "beta";
pub const GAMMA: &str = "gamma";

pub const PAIR: &str = "pair";
pub const WEIGHT: &str = "weight";
pub const KEEPS_SHAPE: &str = "keeps_shape";

/// Every field key.
pub const FIELD_KEYS: [&str; 3] = [PAIR, WEIGHT, KEEPS_SHAPE];

pub const FEATURES: &str = "features";
pub const ATTENTION: &str = "attention";
pub const SPARSITY: &str = "sparsity";
pub const RELATIONS: &str = "relations";

/// Every kind of knowledge `match(...)` accepts.
pub const MATCH_KINDS: [&str; 4] = [FEATURES, ATTENTION, SPARSITY, RELATIONS];

pub const HINT: &str = "hint";
pub const NST: &str = "nst";
pub const ACTIVATION: &str = "activation";
pub const GRADIENT: &str = "gradient";
pub const PAPER: &str = "paper";
pub const LAYERS: &str = "layers";
pub const SAMPLES: &str = "samples";
pub const RKD: &str = "rkd";
pub const SP: &str = "sp";

/// The closest of `candidates` to `word`, if it is a plausible misspelling.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_spellings_only() {
        assert_eq!(suggest("atention", &MATCH_KINDS), Some("attention"));
        assert_eq!(suggest("feature", &MATCH_KINDS), Some("features"));
        assert_eq!(suggest("tmp", &CONTAINER_KEYS), Some("temp"));
        assert_eq!(suggest("banana", &MATCH_KINDS), None);
    }
}
