//! The resilience score, as Litmus defines it: per fault step, probe success % = passed checks ×
//! 100 / checks attributed to the step; run score = Σ(weight × step %) / Σ weights, one decimal.
//! Steps are faults numbered in template order (every fault of a parallel group separately). A
//! check counts for every fault active when it started; with none active, for the faults of the
//! most recent group; before the first fault, for the faults of the first group. The caller
//! passes one (fault, ok) pair per fault a check counts for.

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
        // A parallel group: faults 1 (weight 8) and 2 (weight 2) both active for two checks
        // (one fails); fault 2 alone for two more (both pass). A check counts for every fault
        // active when it started, so the pairs are:
        //   fault 0 (weight 5): 2 of 2 -> 100
        //   fault 1 (weight 8): 1 of 2 -> 50
        //   fault 2 (weight 2): 3 of 4 -> 75
        //   (5*100 + 8*50 + 2*75) / 15 = 1050 / 15 = 70.0
        let checks = [
            (vec![0], true),
            (vec![0], true),
            (vec![1, 2], true),
            (vec![1, 2], false),
            (vec![2], true),
            (vec![2], true),
        ];
        let pairs = checks
            .iter()
            .flat_map(|(fs, ok)| fs.iter().map(move |f| (*f, *ok)));
        assert_eq!(score(&[5, 8, 2], pairs), Some(70.0));
        // Rounding to one decimal: weights 3 and 7, 1/3 and 2/3 pass -> (100 + 466.67)/10 = 56.7
        let pairs = [
            (0, true),
            (0, false),
            (0, false),
            (1, true),
            (1, true),
            (1, false),
        ];
        assert_eq!(score(&[3, 7], pairs), Some(56.7));
        assert_eq!(score(&[0], [(0, true)]), None);
    }
}
