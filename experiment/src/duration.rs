//! `Dur`: a duration written the way humans write it in YAML (`500ms`, `5s`, `1m30s`).
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr, time::Duration};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// What `Dur` parses, as a regular expression for the template's JSON Schema: `"0"`, or numbers
/// each with an optional fraction and one of humantime's units (`500ms`, `1.5s`, `1m30s`,
/// `2h 5m`). Like humantime, it allows whitespace inside numbers and between the parts.
pub const PATTERN: &str = concat!(
    r"^\s*(0|([0-9][0-9\s]*(\.[0-9\s]*[0-9][0-9\s]*)?",
    r"(nanos|nsec|ns|usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|",
    r"minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|",
    r"months|month|M|years|year|yrs|yr|y)\s*)+)\s*$",
);

impl Dur {
    pub const fn from_millis(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(Dur)
            .map_err(|e| format!("invalid duration {s:?} ({e}); write it like 500ms, 5s or 2m"))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": PATTERN,
            "description": "A duration with a unit, e.g. 500ms, 5s, 1m30s or 1.5h (units: ns, us, \
                            ms, s, m, h, d, w, M, y and their long forms). A bare number is \
                            refused; only \"0\" may go without a unit.",
            "examples": ["500ms", "5s", "1m30s"],
        })
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration such as 500ms, 5s or 2m")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a bare number ({v}) is ambiguous; add a unit, e.g. {v}s or {v}ms"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn parses_units_and_rejects_bare_numbers() {
        assert_eq!("500ms".parse::<Dur>().unwrap(), Dur::from_millis(500));
        assert_eq!("1m30s".parse::<Dur>().unwrap(), Dur::secs(90));
        assert!("five".parse::<Dur>().is_err());
        let e = serde_json::from_str::<Dur>("5").unwrap_err().to_string();
        assert!(e.contains("add a unit"), "{e}");
        let round: Dur =
            serde_json::from_str(&serde_json::to_string(&Dur::from_millis(1500)).unwrap()).unwrap();
        assert_eq!(round, Dur::from_millis(1500));
    }

    /// The schema's pattern never refuses a duration the parser takes (it may let through a few
    /// the parser refuses, e.g. numbers too large, which validation then reports).
    #[test]
    fn pattern_accepts_what_the_parser_accepts() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        let mut inputs: Vec<String> = [
            "0", " 0 ", "0s", "500ms", "5s", "1m30s", "1m 30s", "1.5h", "2h 5m 1s", "1 0s", "5 s",
            "3µs", "1week", "2 months", "1y", "10min", "", "5", "00", "1.s", ".5s", "5sm", "5 s m",
            "s", "-5s", "1.5.5s", "5x", "1e3ms", "five",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Short strings over the characters that matter, from a fixed pseudo-random sequence.
        let alphabet: Vec<char> = "0159. smhnuµMdwyx-ec".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..50_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (x >> 60) as usize % 7;
            inputs.push(
                (0..len)
                    .map(|i| alphabet[(x >> (i * 5 + 3)) as usize % alphabet.len()])
                    .collect(),
            );
        }
        let mut both = 0;
        for s in &inputs {
            let parsed = s.parse::<Dur>().is_ok();
            let matched = pattern.is_match(s);
            assert!(!parsed || matched, "pattern refuses {s:?}, which parses");
            both += (parsed && matched) as usize;
        }
        assert!(both > 500, "too few valid samples: {both}");
        for bad in ["", "5", "00", "1.s", "5sm", "s", "-5s", "5x", "five"] {
            assert!(!pattern.is_match(bad), "pattern takes {bad:?}");
        }
    }
}
