//! The resilience score, as Litmus defines it: per fault step, probe success % = passed checks ×
//! 100 / checks attributed to the step; run score = Σ(weight × step %) / Σ weights, one decimal.
//! Each check is attributed to the step that was active, or most recently active, when it ran;
//! checks before the first fault count for the first step.

/// `checks` are (step index, ok). Steps with no checks are left out; `None` when nothing counts.
pub fn score(weights: &[u8], checks: impl IntoIterator<Item = (usize, bool)>) -> Option<f64> {
    let mut tally = vec![(0u32, 0u32); weights.len()];
    for (step, ok) in checks {
        if let Some(t) = tally.get_mut(step) {
            t.1 += 1;
            t.0 += ok as u32;
        }
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (w, (passed, total)) in weights.iter().zip(tally) {
        if total == 0 {
            continue;
        }
        num += *w as f64 * (passed as f64 * 100.0 / total as f64);
        den += *w as f64;
    }
    if den == 0.0 {
        return None;
    }
    Some((num / den * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn hand_computed_cases() {
        // one step: 3 of 4 pass -> 75
        assert_eq!(
            score(&[5], [(0, true), (0, true), (0, false), (0, true)]),
            Some(75.0)
        );
        // two steps: weights 10 and 5; step0 100%, step1 50% -> (1000+250)/15 = 83.33 -> 83.3
        assert_eq!(
            score(&[10, 5], [(0, true), (1, true), (1, false)]),
            Some(83.3)
        );
        // a step without checks does not count
        assert_eq!(score(&[5, 5], [(0, false), (0, true)]), Some(50.0));
        assert_eq!(score(&[5], []), None);
        assert_eq!(score(&[0], [(0, true)]), None);
    }
}
