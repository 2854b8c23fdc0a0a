//! Fix hints for template errors: "did you mean" suggestions for misspelt names, and advice for
//! the mistakes people make most (durations without units, wrong types).

/// The closest of `known` to `given`, phrased as a question, when it is close enough to be a
/// likely typo (edit distance at most a third of the word, and at least 1).
pub fn did_you_mean(given: &str, known: &[&str]) -> Option<String> {
    let given_l = given.to_ascii_lowercase();
    let (best, d) = known
        .iter()
        .map(|k| (*k, distance(&given_l, &k.to_ascii_lowercase())))
        .min_by_key(|(_, d)| *d)?;
    let limit = (given.chars().count().max(best.chars().count()) / 3).max(1);
    (d <= limit).then(|| format!("did you mean {best:?}?"))
}

/// Edit distance over chars where swapping two neighbours costs 1 (optimal string alignment),
/// so `nmae` is one edit from `name`.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// A hint for a serde error message about `field`.
pub fn for_yaml_error(field: &str, message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (given, rest) = rest.split_once('`')?;
        // serde's message lists the allowed names already; a hint only when one is a likely
        // typo of what was written.
        let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        return did_you_mean(given, &known);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (given, rest) = rest.split_once('`')?;
        let known: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        return did_you_mean(given, &known);
    }
    if message.contains("duration") || message.contains("time unit") {
        return Some("write durations with a unit: 500ms, 30s, 5m, 1h".into());
    }
    if message.starts_with("missing field `") {
        return Some(
            "add it; see `faultline schema template` or docs/template-reference.md".into(),
        );
    }
    if message.contains("did not match any variant of untagged enum StatusSpec") {
        return Some("write 200, [200, 204], \"2xx\" or \"200-299\"".into());
    }
    let _ = field;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("proces-kill", &["process-kill", "process-pause"]).as_deref(),
            Some("did you mean \"process-kill\"?")
        );
        assert_eq!(
            did_you_mean("cpu-stress", &["process-kill", "process-pause"]),
            None
        );
        assert_eq!(did_you_mean("x", &[]), None);
    }

    #[test]
    fn hints_for_unknown_fields_name_the_closest() {
        let h = for_yaml_error(
            "steps[0].duraton",
            "unknown field `duraton`, expected one of `name`, `fault`, `duration`",
        );
        assert_eq!(h.as_deref(), Some("did you mean \"duration\"?"));
        let h = for_yaml_error("x.zzz", "unknown field `zzz`, expected `url` or `method`");
        assert_eq!(h, None, "no hint when nothing is close");
        assert_eq!(
            did_you_mean("nmae", &["name", "labels"]).as_deref(),
            Some("did you mean \"name\"?"),
            "a swap is one edit"
        );
    }
}
