//! The statistical verdict of a run: did a probe's latency change while faults were active?
//!
//! Owns the two-sided Mann-Whitney U test, with the semantics of R's `wilcox.test(x, y)`, Fisher's
//! exact test of the failure rates, and the one-line sentence shown to users. A failed check (an
//! error or a timeout) is an observation too: callers pass it as `f64::INFINITY`, a latency
//! censored at the top, so it ranks above every answered check (failures tie with each other). Collecting the samples, and deciding which probes
//! measure latency and which samples were taken before or during the faults, belongs to the
//! delegate and the hub. Pure arithmetic: no I/O, no panics on any input.

use serde::{Deserialize, Serialize};

/// Significance level of the verdict.
pub const ALPHA: f64 = 0.05;

/// Minimum samples per group for a verdict; fewer -> summary says so, significant=false, p None.
pub const MIN_SAMPLES: usize = 5;

/// Largest group size for the exact distribution. R's rule (`n.x < 50 && n.y < 50`, no ties), so
/// small runs get the same p-value as `wilcox.test`; the exact counts cost O(min(n1,n2)² · max)
/// and fit an `i128` (at most C(98, 49) ≈ 2.5e28 arrangements).
const EXACT_MAX: usize = 49;

/// Result of a two-sided Mann-Whitney U test of x against y.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U statistic of x (U1 = R1 - n1(n1+1)/2); R reports it as `W`. Above n1·n2/2 means x tends
    /// to be larger than y.
    pub u: f64,
    /// Normal approximation z with continuity correction, signed like `u - n1·n2/2`; 0.0 when
    /// the p-value is exact.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` comes from the exact distribution of U rather than the normal
    /// approximation.
    pub exact: bool,
}

/// None when either sample is empty or contains a non-finite value.
///
/// Ties get average ranks. Without ties and with both groups of at most 49 values the p-value is
/// exact, `min(1, 2·min(P(U ≤ u), P(U ≥ u)))` (R: `exact = TRUE`). Otherwise it is the normal
/// approximation with tie-corrected variance and continuity correction 0.5 (R: `exact = FALSE,
/// correct = TRUE`); when every value is tied the variance is zero and p is 1. O(n log n) on
/// the approximate path.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));

    // Runs are grouped with `==`, not `total_cmp`, so -0.0 and 0.0 (adjacent after the sort)
    // count as a tie.
    let (mut r1, mut tie_term, mut ties) = (0.0, 0.0, false);
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i) as f64;
        let rank = (i + j + 1) as f64 / 2.0; // mean of ranks i+1..=j
        r1 += rank * all[i..j].iter().filter(|e| e.1).count() as f64;
        if j - i > 1 {
            ties = true;
            tie_term += t * t * t - t;
        }
        i = j;
    }
    let u = r1 - n1 * (n1 + 1.0) / 2.0;

    if !ties && x.len() <= EXACT_MAX && y.len() <= EXACT_MAX {
        return Some(MannWhitney {
            u,
            z: 0.0,
            p_value: exact_p(u, x.len(), y.len()),
            exact: true,
        });
    }

    let n = n1 + n2;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    let d = u - n1 * n2 / 2.0;
    // R's `sign(z) * 0.5`: no correction when U sits exactly on its mean.
    let correction = if d > 0.0 {
        0.5
    } else if d < 0.0 {
        -0.5
    } else {
        0.0
    };
    let (z, p_value) = if var > 0.0 {
        let z = (d - correction) / var.sqrt();
        (z, erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0))
    } else {
        // Every value tied: nothing separates the groups.
        (0.0, 1.0)
    };
    Some(MannWhitney {
        u,
        z,
        p_value,
        exact: false,
    })
}

/// Exact two-sided p-value of U = `u` for group sizes `m` and `n`, no ties.
fn exact_p(u: f64, m: usize, n: usize) -> f64 {
    let counts = u_counts(m, n);
    let k = (u.round().max(0.0) as usize).min(counts.len() - 1);
    let total: i128 = counts.iter().sum();
    let lo: i128 = counts[..=k].iter().sum();
    let hi: i128 = counts[k..].iter().sum();
    (2.0 * lo.min(hi) as f64 / total as f64).min(1.0)
}

/// `c[u]` = how many of the C(m+n, m) rank arrangements give U = u: the coefficients of the
/// Gaussian binomial [m+n choose m]_q = Π_{i=1..m} (1 - q^(n+i)) / (1 - q^i). Working modulo
/// q^(mn+1) is exact because both steps only read lower coefficients.
fn u_counts(m: usize, n: usize) -> Vec<i128> {
    let (m, n) = (m.min(n), m.max(n));
    let len = m * n + 1;
    let mut c = vec![0i128; len];
    c[0] = 1;
    for i in 1..=m {
        let a = n + i;
        for k in (a..len).rev() {
            c[k] -= c[k - a];
        }
        for k in i..len {
            c[k] += c[k - i];
        }
    }
    c
}

/// Complementary error function, Numerical Recipes' `erfcc` (Chebyshev fit; Press et al.,
/// *Numerical Recipes in C*, 2nd ed., §6.2). Fractional error below 1.2e-7 for every x, so a
/// p-value from it is within 1.2e-7 · p of the true normal tail, far below what the verdict
/// or its two printed digits can show.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.26551223
        + t * (1.00002368
            + t * (0.37409196
                + t * (0.09678418
                    + t * (-0.18628806
                        + t * (0.27886807
                            + t * (-1.13520398
                                + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    let ans = t * poly.exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

/// None on empty; ignores nothing (callers pass finite values). The mean of the two middle
/// values for an even count.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        v[mid - 1].midpoint(v[mid])
    })
}

/// The `q` quantile (0 to 1) of values already sorted ascending, interpolated between the two
/// nearest ranks (R's default, type 7; `quantile_sorted(v, 0.5)` is the [`median`]). None on
/// empty; `q` is clamped to 0..=1. The run report's latency percentiles.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    let (a, b) = (sorted[lo], sorted[hi.min(last)]);
    Some(a + (b - a) * (h - lo as f64))
}

/// Latency before vs during the faults for one probe, as stored with the run and shown in the UI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyShift {
    /// Name of the probe whose latencies these are.
    pub probe: String,
    /// Control samples (checks before the first fault), failed ones included.
    pub control_n: usize,
    /// Samples of checks that started while faults were active, failed ones included.
    pub chaos_n: usize,
    /// Control checks that failed (ranked above every answered check).
    #[serde(default)]
    pub control_failed: usize,
    /// Chaos checks that failed.
    #[serde(default)]
    pub chaos_failed: usize,
    /// Two-sided p of Fisher's exact test that the failure rates differ; None without samples in
    /// both groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_p_value: Option<f64>,
    /// None when there were no control samples, or when more than half of them failed.
    pub control_median_ms: Option<f64>,
    /// None when there were no chaos samples, or when more than half of them failed.
    pub chaos_median_ms: Option<f64>,
    /// Chaos median - control median; shown even without a verdict, as a hint.
    pub shift_ms: Option<f64>,
    /// U statistic of the control group against the chaos group (R's `W` for
    /// `wilcox.test(control, chaos)`); None below [`MIN_SAMPLES`].
    pub u: Option<f64>,
    /// Two-sided p-value; None below [`MIN_SAMPLES`].
    pub p_value: Option<f64>,
    /// p_value < [`ALPHA`].
    pub significant: bool,
    /// One plain sentence, e.g. "latency rose from 12 ms to 214 ms, p < 0.001".
    pub summary: String,
}

/// Stands for a failed check in the ranks: finite (the test takes finite values only) and above
/// any latency a probe can measure.
const FAILED: f64 = f64::MAX;

/// Compares control (before the faults) with chaos (during) latencies for `probe`; a failed check
/// is `f64::INFINITY`.
///
/// NaN and -inf are dropped first: they carry no observation, and the counts report what was
/// actually compared. The direction in the summary comes from U, the statistic that was tested;
/// the medians illustrate it.
pub fn latency_shift(probe: &str, control_ms: &[f64], chaos_ms: &[f64]) -> LatencyShift {
    let observed = |v: &f64| match *v {
        v if v == f64::INFINITY => Some(FAILED),
        v if v.is_finite() => Some(v),
        _ => None,
    };
    let control: Vec<f64> = control_ms.iter().filter_map(observed).collect();
    let chaos: Vec<f64> = chaos_ms.iter().filter_map(observed).collect();
    let failed = |xs: &[f64]| xs.iter().filter(|v| **v == FAILED).count();
    let (control_failed, chaos_failed) = (failed(&control), failed(&chaos));
    let answered = |m: Option<f64>| m.filter(|m| *m < FAILED / 2.0);
    let control_median = median(&control);
    let chaos_median = median(&chaos);
    let (control_median_ms, chaos_median_ms) = (answered(control_median), answered(chaos_median));
    let shift_ms = control_median_ms
        .zip(chaos_median_ms)
        .map(|(before, during)| during - before);
    let test = if control.len() >= MIN_SAMPLES && chaos.len() >= MIN_SAMPLES {
        mann_whitney_u(&control, &chaos)
    } else {
        None
    };
    let failure_p_value = (!control.is_empty() && !chaos.is_empty()).then(|| {
        fisher_exact(
            control_failed,
            control.len() - control_failed,
            chaos_failed,
            chaos.len() - chaos_failed,
        )
    });
    let significant = test.is_some_and(|t| t.p_value < ALPHA);
    let mut summary = match (test, control_median, chaos_median) {
        (Some(t), Some(before), Some(during)) => {
            // U of control below its mean: control ranks lower, so latency rose.
            let rose = t.u < control.len() as f64 * chaos.len() as f64 / 2.0;
            sentence(t.p_value, rose, before, during)
        }
        _ => format!(
            "not enough samples for a verdict ({} before, {} during; need {MIN_SAMPLES} each)",
            control.len(),
            chaos.len()
        ),
    };
    if control_failed + chaos_failed > 0 {
        summary.push_str(&format!(
            "; failed checks: {control_failed} of {} before, {chaos_failed} of {} during",
            control.len(),
            chaos.len()
        ));
        if let Some(p) = failure_p_value {
            summary.push_str(&format!(", {}", format_p(p)));
        }
    }
    LatencyShift {
        probe: probe.to_owned(),
        control_n: control.len(),
        chaos_n: chaos.len(),
        control_failed,
        chaos_failed,
        failure_p_value,
        control_median_ms,
        chaos_median_ms,
        shift_ms,
        u: test.map(|t| t.u),
        p_value: test.map(|t| t.p_value),
        significant,
        summary,
    }
}

/// Two-sided p of Fisher's exact test for the 2×2 table `[[a, b], [c, d]]` (R's
/// `fisher.test`): the probability, with the margins fixed, of every table at most as likely as
/// the one observed.
pub fn fisher_exact(a: usize, b: usize, c: usize, d: usize) -> f64 {
    let n = a + b + c + d;
    // ln k! for k = 0..=n.
    let mut lf = vec![0.0f64; n + 1];
    for k in 1..=n {
        lf[k] = lf[k - 1] + (k as f64).ln();
    }
    let (row1, col1) = (a + b, a + c);
    let row2 = c + d;
    let ln_p = |x: usize| {
        // x failures in row 1, given the margins.
        lf[row1] + lf[row2] + lf[col1] + lf[n - col1]
            - lf[x]
            - lf[row1 - x]
            - lf[col1 - x]
            - lf[row2 + x - col1]
            - lf[n]
    };
    let lo = col1.saturating_sub(row2);
    let hi = row1.min(col1);
    let observed = ln_p(a);
    // R's relative tolerance for "as likely" (1 + 1e-7).
    let cut = observed + (1.0 + 1e-7f64).ln();
    let p: f64 = (lo..=hi)
        .map(ln_p)
        .filter(|lp| *lp <= cut)
        .map(f64::exp)
        .sum();
    p.min(1.0)
}

fn sentence(p: f64, rose: bool, before: f64, during: f64) -> String {
    // A median that is a failure: more than half the group's checks failed.
    let shown = |v: f64| {
        if v >= FAILED / 2.0 {
            "failing checks".to_owned()
        } else {
            format!("{} ms", ms(v))
        }
    };
    let (b, d, p_text) = (shown(before), shown(during), format_p(p));
    if p >= ALPHA {
        return format!("no significant change in latency ({b} before, {d} during, {p_text})");
    }
    let word = if rose { "rose" } else { "fell" };
    // The ranks can move while the medians stay put (or even move the other way); then a
    // "from A to B" would contradict the verdict.
    let medians_agree = if rose {
        during > before
    } else {
        during < before
    };
    if medians_agree && b != d {
        format!("latency {word} from {b} to {d}, {p_text}")
    } else {
        format!("latency {word} without a clear median shift ({b} before, {d} during, {p_text})")
    }
}

/// Whole milliseconds from 10 ms up, one decimal below.
fn ms(v: f64) -> String {
    let tenths = (v * 10.0).round() / 10.0;
    // `+ 0.0` turns a rounded -0.0 into 0.0.
    if tenths.abs() >= 10.0 {
        format!("{}", v.round() + 0.0)
    } else {
        format!("{:.1}", tenths + 0.0)
    }
}

/// "p < 0.001", else two significant digits without trailing zeros: "p = 0.003", "p = 0.041",
/// "p = 0.41", "p = 1".
fn format_p(p: f64) -> String {
    if p < 0.001 {
        return "p < 0.001".to_owned();
    }
    let decimals = (1 - p.log10().floor() as i32).clamp(0, 17) as usize;
    let mut s = format!("{p:.decimals$}");
    if s.contains('.') {
        s.truncate(s.trim_end_matches('0').trim_end_matches('.').len());
    }
    // 0.0496 would print as 0.05 next to a "significant" verdict.
    if p < ALPHA && s.parse::<f64>().is_ok_and(|shown| shown >= ALPHA) {
        return format!("p < {ALPHA}");
    }
    format!("p = {s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-4;

    fn assert_p(got: f64, want: f64) {
        assert!((got - want).abs() < TOL, "p = {got}, want {want}");
    }

    fn mw(x: &[f64], y: &[f64]) -> MannWhitney {
        mann_whitney_u(x, y).expect("finite, non-empty samples")
    }

    // Hollander & Wolfe, Nonparametric Statistical Methods (1973), p. 69, Example 4.1
    // (permeability constants of the human chorioamnion): the example in R's `?wilcox.test`.
    // Published R output for `wilcox.test(x, y, alternative = "g")`: W = 35, p-value = 0.1272;
    // the two-sided exact p is twice that, 0.2544. Checked with scipy 1.17.1:
    // `mannwhitneyu(x, y, alternative='two-sided', method='exact')` -> U = 35,
    // p = 0.2544122544122544 (and 0.1272061272061272 for alternative='greater').
    #[test]
    fn hollander_wolfe_example_exact() {
        let x = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
        let y = [1.15, 0.88, 0.90, 0.74, 1.21];
        let t = mw(&x, &y);
        assert_eq!(t.u, 35.0);
        assert!(t.exact);
        assert_eq!(t.z, 0.0);
        assert_p(t.p_value, 0.2544);
        // swapping the groups mirrors U and keeps p
        let s = mw(&y, &x);
        assert_eq!(s.u, 15.0);
        assert_p(s.p_value, 0.2544);
    }

    // mtcars mpg by transmission (am = 0: 19 cars, am = 1: 13 cars), with ties. Published R
    // output of `wilcox.test(mpg ~ am, data = mtcars)`, "Wilcoxon rank sum test with continuity
    // correction": W = 42, p-value = 0.001871 (r-tutor.com, "Mann-Whitney-Wilcoxon Test";
    // stats.stackexchange.com/q/290830 prints 0.001871391). scipy 1.17.1 `mannwhitneyu(am0, am1,
    // alternative='two-sided', method='asymptotic', use_continuity=True)`: U = 42,
    // p = 0.0018713913331785542.
    #[test]
    fn mtcars_with_ties_normal_approximation() {
        let am0 = [
            21.4, 18.7, 18.1, 14.3, 24.4, 22.8, 19.2, 17.8, 16.4, 17.3, 15.2, 10.4, 10.4, 14.7,
            21.5, 15.5, 15.2, 13.3, 19.2,
        ];
        let am1 = [
            21.0, 21.0, 22.8, 32.4, 30.4, 33.9, 27.3, 26.0, 30.4, 15.8, 19.7, 15.0, 21.4,
        ];
        let t = mw(&am0, &am1);
        assert_eq!(t.u, 42.0);
        assert!(!t.exact);
        assert_p(t.p_value, 0.001871);
        assert!(t.z < 0.0);
    }

    // Published R output on endmemo.com/r/wilcoxon.php, both "with continuity correction" since
    // x has ties: wilcox.test(x, y) gives W = 51.5, p-value = 0.5966; with y2, W = 0,
    // p-value = 0.001364. scipy 1.17.1 asymptotic, use_continuity=True: U = 51.5,
    // p = 0.596596902628 (|z| = 0.5293); U = 0, p = 0.00136439295438 (|z| = 3.2021).
    #[test]
    fn endmemo_examples_with_ties() {
        let x = [1.0, 5.0, 9.0, 24.0, 56.0, 21.0, 3.0, 7.0, 21.0, 4.0];
        let y = [
            12.0, 15.0, 5.0, 9.0, 9.0, 14.0, 56.0, 22.0, 3.0, 7.0, 32.0, 5.0,
        ];
        let t = mw(&x, &y);
        assert_eq!(t.u, 51.5);
        assert!(!t.exact);
        assert_p(t.p_value, 0.5966);
        assert!((t.z + 0.5293).abs() < 1e-3, "z = {}", t.z);

        let y2 = [1233.0, 4356.0, 987.0, 39999.0, 1111.0, 200000.0];
        let t = mw(&x, &y2);
        assert_eq!(t.u, 0.0);
        assert_p(t.p_value, 0.001364);
        assert!((t.z + 3.2021).abs() < 1e-3, "z = {}", t.z);
    }

    // scipy 1.17.1, `mannwhitneyu(x, y, alternative='two-sided', method='exact')`, no ties:
    // small: U = 1, p = 0.002331002331 (= 2·2/C(13,6)); fell: U = 65, p = 0.00370218017277.
    #[test]
    fn small_samples_exact_scipy() {
        let control = [12.1, 14.3, 11.8, 13.0, 12.7, 15.2, 11.1];
        let chaos = [25.3, 19.8, 14.9, 30.2, 22.4, 18.7];
        let t = mw(&control, &chaos);
        assert!(t.exact);
        assert_eq!(t.u, 1.0);
        assert_p(t.p_value, 0.002331002331);
        assert_eq!(mw(&chaos, &control).u, 41.0);

        let before = [40.2, 38.5, 44.1, 41.7, 39.9, 43.3, 37.6, 42.8];
        let during = [21.4, 19.9, 23.0, 20.8, 44.0, 22.5, 18.7, 24.1, 20.2];
        let t = mw(&before, &during);
        assert!(t.exact);
        assert_eq!(t.u, 65.0);
        assert_p(t.p_value, 0.00370218017277);
    }

    /// 30 and 40 distinct values from a fixed formula (the same in the scipy script).
    fn medium(off: f64) -> (Vec<f64>, Vec<f64>) {
        let x = (1..=30)
            .map(|i| ((i * 7919) % 1009) as f64 / 10.0)
            .collect();
        let y = (1..=40)
            .map(|j| ((j * 104729) % 1013) as f64 / 10.0 + off)
            .collect();
        (x, y)
    }

    // Exact path beyond n = 20 (R uses it up to 49 per group). scipy 1.17.1, method='exact':
    // off 8.05 -> U = 566, p = 0.692796641368; off 20.05 -> U = 431, p = 0.04503727976203163.
    #[test]
    fn medium_samples_exact_scipy() {
        let (x, y) = medium(8.05);
        let t = mw(&x, &y);
        assert!(t.exact);
        assert_eq!(t.u, 566.0);
        assert_p(t.p_value, 0.692796641368);

        let (x, y) = medium(20.05);
        let t = mw(&x, &y);
        assert!(t.exact);
        assert_eq!(t.u, 431.0);
        assert_p(t.p_value, 0.04503727976203163);
    }

    // Complete separation at the largest exact size: P(U = 0) = 1/C(98,49), so p = 2/C(98,49)
    // = 7.85002919296e-29 (scipy 1.17.1 method='exact' agrees). Checked relatively, since the
    // absolute tolerance would pass anything this small.
    #[test]
    fn exact_tail_at_largest_size() {
        let x: Vec<f64> = (0..49).map(f64::from).collect();
        let y: Vec<f64> = (100..149).map(f64::from).collect();
        let t = mw(&x, &y);
        assert!(t.exact);
        assert_eq!(t.u, 0.0);
        assert!(
            (t.p_value / 7.85002919296e-29 - 1.0).abs() < 1e-9,
            "{}",
            t.p_value
        );
    }

    // 50 per group is past R's exact limit: normal approximation even without ties.
    // scipy 1.17.1 asymptotic, use_continuity=True: U = 1141, p = 0.454472549028.
    // 200 vs 300 heavily tied integers: U = 28003, p = 0.207131070421.
    #[test]
    fn larger_samples_normal_scipy() {
        let x: Vec<f64> = (1..=50)
            .map(|i| ((i * 7919) % 1009) as f64 / 10.0)
            .collect();
        let y: Vec<f64> = (1..=50)
            .map(|j| ((j * 104729) % 1013) as f64 / 10.0 + 8.05)
            .collect();
        let t = mw(&x, &y);
        assert!(!t.exact);
        assert_eq!(t.u, 1141.0);
        assert_p(t.p_value, 0.454472549028);

        let x: Vec<f64> = (0..200).map(|i| ((i * 37) % 101) as f64).collect();
        let y: Vec<f64> = (0..300).map(|j| ((j * 53) % 103) as f64 + 3.0).collect();
        let t = mw(&x, &y);
        assert!(!t.exact);
        assert_eq!(t.u, 28003.0);
        assert_p(t.p_value, 0.207131070421);
    }

    // Identical groups: scipy 1.17.1 gives U = 12.5, p = 1 (asymptotic, ties) and U = 8, p = 1
    // (exact, interleaved without ties). All values tied: scipy also reports p = 1.
    #[test]
    fn identical_groups_give_p_one() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let t = mw(&a, &a);
        assert_eq!((t.u, t.z, t.p_value), (12.5, 0.0, 1.0));
        let t = mw(&[1.0, 4.0, 5.0, 8.0], &[2.0, 3.0, 6.0, 7.0]);
        assert!(t.exact);
        assert_eq!((t.u, t.p_value), (8.0, 1.0));
        let t = mw(&[3.0; 3], &[3.0; 2]);
        assert_eq!((t.u, t.p_value), (3.0, 1.0));
        // -0.0 and 0.0 are one tie
        let t = mw(&[-0.0, 0.0], &[0.0]);
        assert_eq!((t.u, t.p_value), (1.0, 1.0));
    }

    #[test]
    fn rejects_empty_and_non_finite() {
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
        assert_eq!(mann_whitney_u(&[1.0], &[]), None);
        assert_eq!(mann_whitney_u(&[1.0, f64::NAN], &[2.0]), None);
        assert_eq!(mann_whitney_u(&[1.0], &[f64::INFINITY]), None);
        assert_eq!(mann_whitney_u(&[1.0], &[f64::NEG_INFINITY]), None);
        // one value each is still a (meaningless but defined) test
        assert_eq!(mw(&[1.0], &[2.0]).p_value, 1.0);
    }

    #[test]
    fn huge_samples_take_the_fast_path() {
        let x: Vec<f64> = (0..100_000).map(|i| (i % 977) as f64).collect();
        let y: Vec<f64> = (0..100_000).map(|i| (i % 983) as f64 + 1.0).collect();
        let t = mw(&x, &y);
        assert!(!t.exact);
        assert!(t.p_value.is_finite() && (0.0..=1.0).contains(&t.p_value));
        let extreme = [f64::MAX, -f64::MAX, f64::MIN_POSITIVE, 0.0, 1e-300];
        assert!(mann_whitney_u(&extreme, &extreme).is_some());
        assert!(latency_shift("p", &extreme, &extreme)
            .summary
            .starts_with("no significant"));
    }

    // R 4.x: quantile(c(1, 2, 3, 4, 10), c(0, .5, .95, .99, 1)) -> 1, 3, 8.8, 9.76, 10 (type 7).
    #[test]
    fn quantiles_interpolate_like_r_type_7() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        let q = |p| quantile_sorted(&v, p).unwrap();
        assert_eq!(q(0.0), 1.0);
        assert_eq!(q(0.5), 3.0);
        assert!((q(0.95) - 8.8).abs() < 1e-9, "{}", q(0.95));
        assert!((q(0.99) - 9.76).abs() < 1e-9, "{}", q(0.99));
        assert_eq!(q(1.0), 10.0);
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[7.0], 0.99), Some(7.0));
        let even = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&even, 0.5), median(&even));
    }

    #[test]
    fn median_cases() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::MAX, f64::MAX]), Some(f64::MAX));
    }

    #[test]
    fn erfc_matches_known_values() {
        // erfc(0) = 1, erfc(1) = 0.157299207050285, erfc(-1) = 1.842700792949715,
        // erfc(3) = 2.209049699858544e-5 (Abramowitz & Stegun table 7.1 / any libm)
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.0) / 0.157299207050285 - 1.0).abs() < 1.2e-7);
        assert!((erfc(-1.0) - 1.842700792949715).abs() < 1e-7);
        assert!((erfc(3.0) / 2.209049699858544e-5 - 1.0).abs() < 1.2e-7);
        assert_eq!(erfc(f64::INFINITY), 0.0);
    }

    #[test]
    fn sentences() {
        // rose, p = 0.0023 (the scipy small example above)
        let s = latency_shift(
            "checkout",
            &[12.1, 14.3, 11.8, 13.0, 12.7, 15.2, 11.1],
            &[25.3, 19.8, 14.9, 30.2, 22.4, 18.7],
        );
        assert!(s.significant);
        assert_eq!(s.summary, "latency rose from 13 ms to 21 ms, p = 0.0023");
        assert_eq!((s.control_n, s.chaos_n), (7, 6));
        assert_eq!(s.control_median_ms, Some(12.7));
        assert!((s.shift_ms.unwrap() - 8.4).abs() < 1e-9);
        assert_eq!(s.u, Some(1.0));

        let s = latency_shift(
            "checkout",
            &[40.2, 38.5, 44.1, 41.7, 39.9, 43.3, 37.6, 42.8],
            &[21.4, 19.9, 23.0, 20.8, 44.0, 22.5, 18.7, 24.1, 20.2],
        );
        assert_eq!(s.summary, "latency fell from 41 ms to 21 ms, p = 0.0037");

        let s = latency_shift(
            "api",
            &[12.0, 11.0, 13.0, 12.5, 11.5, 12.2],
            &[210.0, 214.0, 220.0, 199.0, 230.0, 213.0],
        );
        // complete separation, 6 vs 6, exact: p = 2/C(12,6) = 0.0021645
        assert_eq!(s.summary, "latency rose from 12 ms to 214 ms, p = 0.0022");
        let many_before: Vec<f64> = (0..40).map(|i| 10.0 + i as f64 * 0.1).collect();
        let many_during: Vec<f64> = (0..40).map(|i| 200.0 + i as f64).collect();
        let s = latency_shift("api", &many_before, &many_during);
        assert_eq!(s.summary, "latency rose from 12 ms to 220 ms, p < 0.001");

        // scipy 1.17.1 asymptotic (1.3 is tied): p = 0.7532980334628383
        let s = latency_shift(
            "db",
            &[1.2, 1.4, 1.1, 1.3, 1.25],
            &[1.3, 1.15, 1.22, 1.41, 1.27],
        );
        assert!(!s.significant);
        assert_eq!(
            s.summary,
            "no significant change in latency (1.3 ms before, 1.3 ms during, p = 0.75)"
        );

        let s = latency_shift("db", &[12.0, 13.0, 14.0], &[40.0; 40]);
        assert_eq!(
            s.summary,
            "not enough samples for a verdict (3 before, 40 during; need 5 each)"
        );
        assert!(!s.significant);
        assert_eq!((s.u, s.p_value), (None, None));
        assert_eq!(s.shift_ms, Some(27.0));

        // NaN and -inf are dropped before counting; +inf is a failed check
        let s = latency_shift(
            "db",
            &[f64::NAN; 10],
            &[f64::INFINITY, 5.0, f64::NEG_INFINITY],
        );
        assert_eq!(
            s.summary,
            "not enough samples for a verdict (0 before, 2 during; need 5 each); failed checks: 0 of 0 before, 1 of 2 during"
        );
        assert_eq!((s.control_median_ms, s.shift_ms), (None, None));
        assert_eq!((s.chaos_n, s.chaos_failed, s.failure_p_value), (2, 1, None));
        let s = latency_shift("db", &[], &[]);
        assert_eq!(s.control_n + s.chaos_n, 0);
        assert!(s.summary.starts_with("not enough samples"));
    }

    // Both medians are 10, yet chaos ranks higher overall. scipy 1.17.1 asymptotic,
    // use_continuity=True: U = 119, p = 0.029364798467575344.
    #[test]
    fn ranks_move_without_the_medians() {
        let before: Vec<f64> = (1..10)
            .map(f64::from)
            .chain([10.0, 10.0])
            .chain((1..10).map(|i| 10.0 + f64::from(i) / 10.0))
            .collect();
        let during: Vec<f64> = (1..10)
            .map(|i| 9.0 + f64::from(i) / 10.0)
            .chain([10.0, 10.0])
            .chain((100..109).map(f64::from))
            .collect();
        let s = latency_shift("x", &before, &during);
        assert_eq!(s.u, Some(119.0));
        assert_p(s.p_value.unwrap(), 0.029364798467575344);
        assert_eq!(s.shift_ms, Some(0.0));
        assert_eq!(
            s.summary,
            "latency rose without a clear median shift (10 ms before, 10 ms during, p = 0.029)"
        );
    }

    // R 4.3: fisher.test(matrix(c(0, 8, 6, 2), 2, byrow = TRUE))$p.value = 0.006993007;
    // fisher.test(matrix(c(1, 9, 3, 7), 2, byrow = TRUE))$p.value = 0.5820433;
    // fisher.test(matrix(c(3, 1, 1, 3), 2, byrow = TRUE))$p.value = 0.4857143.
    #[test]
    fn fisher_exact_matches_r() {
        assert_p(fisher_exact(0, 8, 6, 2), 0.006993007);
        assert_p(fisher_exact(1, 9, 3, 7), 0.5820433);
        assert_p(fisher_exact(3, 1, 1, 3), 0.4857143);
        assert_p(fisher_exact(0, 5, 0, 5), 1.0);
        assert_p(fisher_exact(0, 0, 0, 0), 1.0);
    }

    /// A fault that makes every check time out: the failures rank above every answered check, so
    /// the shift is significant although no failed check has a latency, and the failure rates
    /// are compared too.
    #[test]
    fn failed_checks_are_observations() {
        let before = [2.0, 2.1, 1.9, 2.2, 2.05, 1.95, 2.15, 2.3];
        let during = [f64::INFINITY; 8];
        let s = latency_shift("web", &before, &during);
        assert_eq!((s.control_n, s.chaos_n), (8, 8));
        assert_eq!((s.control_failed, s.chaos_failed), (0, 8));
        assert_eq!(s.chaos_median_ms, None);
        assert_eq!(s.u, Some(0.0));
        assert!(s.significant, "{s:?}");
        // 0 of 8 against 8 of 8: p = 2/C(16, 8) = 1.554e-4.
        assert_p(s.failure_p_value.unwrap(), 2.0 / 12870.0);
        assert_eq!(
            s.summary,
            "latency rose from 2.1 ms to failing checks, p < 0.001; failed checks: 0 of 8 before, 8 of 8 during, p < 0.001"
        );
        // Dropping the failures (what older delegates did) would have hidden the fault.
        let answered = latency_shift("web", &before, &[2.0, 2.1, f64::NAN]);
        assert!(!answered.significant);
    }

    #[test]
    fn p_and_ms_formatting() {
        assert_eq!(format_p(0.0004), "p < 0.001");
        assert_eq!(format_p(0.001), "p = 0.001");
        assert_eq!(format_p(0.003), "p = 0.003");
        assert_eq!(format_p(0.0412), "p = 0.041");
        assert_eq!(format_p(0.41), "p = 0.41");
        assert_eq!(format_p(0.4), "p = 0.4");
        assert_eq!(format_p(1.0), "p = 1");
        assert_eq!(format_p(0.0496), "p < 0.05");
        assert_eq!(format_p(0.05), "p = 0.05");
        assert_eq!(ms(214.4), "214");
        assert_eq!(ms(12.5), "13");
        assert_eq!(ms(9.96), "10");
        assert_eq!(ms(9.94), "9.9");
        assert_eq!(ms(0.0), "0.0");
        assert_eq!(ms(-0.01), "0.0");
    }

    #[test]
    fn serializes_camel_case() {
        let s = latency_shift("p", &[1.0; 5], &[1.0; 5]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["controlMedianMs"], 1.0);
        assert_eq!(json["pValue"], 1.0);
        assert_eq!(json["significant"], false);
        let back: LatencyShift = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
