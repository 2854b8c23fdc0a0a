//! `ByteSize`: an amount of memory or disk written the way humans write it (`512MiB`, `2GB`,
//! `4096`). Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (KB, MB, GB, TB)
//! powers of 1000, as `df -h --si` and `free --si` use them.
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// What [`ByteSize`] parses, for the template's JSON Schema.
pub const PATTERN: &str = r"^\s*[0-9]+\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|K|M|G|T)?\s*$";

const KIB: u64 = 1024;

impl ByteSize {
    pub const fn mib(n: u64) -> Self {
        ByteSize(n * KIB * KIB)
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = (&t[..split], t[split..].trim());
        // The value in backticks: the template parser names the field whose value it is.
        let bad = || format!("invalid size `{s}`; write it like 512MiB, 2GiB or 100MB");
        let n: u64 = num.parse().map_err(|_| bad())?;
        let mult: u64 = match unit {
            "" | "B" => 1,
            "KB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            "K" | "KiB" => KIB,
            "M" | "MiB" => KIB.pow(2),
            "G" | "GiB" => KIB.pow(3),
            "T" | "TiB" => KIB.pow(4),
            _ => return Err(bad()),
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size `{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [
            ("TiB", KIB.pow(4)),
            ("GiB", KIB.pow(3)),
            ("MiB", KIB.pow(2)),
        ];
        for (name, m) in units {
            if self.0 >= m && self.0.is_multiple_of(m) {
                return write!(f, "{}{name}", self.0 / m);
            }
        }
        if self.0 >= KIB && self.0.is_multiple_of(KIB) {
            return write!(f, "{}KiB", self.0 / KIB);
        }
        write!(f, "{}B", self.0)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "pattern": PATTERN,
            "minimum": 0,
            "description": "A size in bytes, or with a unit: KiB, MiB, GiB, TiB (powers of 1024) \
                            or KB, MB, GB, TB (powers of 1000), e.g. 512MiB.",
            "examples": ["512MiB", "2GiB"],
        })
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as 512MiB or 2GiB")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_round_trips() {
        assert_eq!("512MiB".parse::<ByteSize>().unwrap(), ByteSize::mib(512));
        assert_eq!("2 GB".parse::<ByteSize>().unwrap(), ByteSize(2_000_000_000));
        assert_eq!("4096".parse::<ByteSize>().unwrap(), ByteSize(4096));
        assert_eq!("4K".parse::<ByteSize>().unwrap(), ByteSize(4096));
        for bad in ["", "MiB", "1.5GiB", "5 parsecs", "-1", "99999999999TiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        for s in [ByteSize::mib(3), ByteSize(1536), ByteSize(7)] {
            assert_eq!(s.to_string().parse::<ByteSize>().unwrap(), s);
        }
        assert_eq!(
            serde_json::from_str::<ByteSize>("1024").unwrap(),
            ByteSize(1024)
        );
    }

    #[test]
    fn pattern_accepts_what_the_parser_accepts() {
        let pattern = regex::Regex::new(PATTERN).unwrap();
        for s in [
            "512MiB",
            " 1 GB ",
            "7",
            "4K",
            "1.5G",
            "x",
            "MiB",
            "5 parsecs",
        ] {
            assert!(
                s.parse::<ByteSize>().is_err() || pattern.is_match(s),
                "pattern refuses {s:?}"
            );
        }
    }
}
