//! `Dur`: a duration written the way humans write it in YAML (`500ms`, `5s`, `1m30s`).
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr, time::Duration};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

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
}
