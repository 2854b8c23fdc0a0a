//! Finds where a field path (`steps[0].params.signal`) stands in a YAML text, so errors found
//! after parsing (meaning, not syntax) still carry a line and column. serde gives positions only
//! for syntax errors; this walks the YAML event stream once and records where every key and
//! sequence item starts.
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → (line, column), both 1-based.
pub struct Locations(HashMap<String, (usize, usize)>);

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    at: HashMap<String, (usize, usize)>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Walker {
    /// The path of the node that starts now, advancing the parent past it.
    fn next_child(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Seq { path, index }) => {
                *index += 1;
                Some(format!("{path}[{}]", *index - 1))
            }
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, m: Marker) {
        let pos = (m.line(), m.col() + 1);
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                    if key.is_none() {
                        // A key: the map itself starts at its first key.
                        self.at.entry(path.clone()).or_insert(pos);
                        let full = join(path, &value);
                        self.at.entry(full).or_insert(pos);
                        *key = Some(value);
                        return;
                    }
                }
                if let Some(p) = self.next_child() {
                    self.at.entry(p).or_insert(pos);
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.next_child() {
                    self.at.entry(p).or_insert(pos);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = self.next_child().unwrap_or_default();
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    self.at.entry(path.clone()).or_insert(pos);
                    Frame::Seq { path, index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl Locations {
    /// Never fails: text that does not parse yields no locations.
    pub fn of(yaml: &str) -> Locations {
        let mut w = Walker::default();
        let _ = Parser::new_from_str(yaml).load(&mut w, false);
        Locations(
            w.at.into_iter()
                .map(|(path, (line, column))| (path, within(yaml, line, column)))
                .collect(),
        )
    }

    /// Where `path` stands, or its nearest ancestor that exists in the text.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some(at) = self.0.get(&p) {
                return Some(*at);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

/// `(line, column)` inside `yaml`. The YAML parsers place the end of a text whose last line has
/// no newline (a comment, an empty item) on the line after it, which an editor does not have:
/// that place is the end of the last line. Lines are counted as YAML counts them (`\r\n`, `\r`
/// or `\n` ends one; so do NEL, LS and PS).
pub(crate) fn within(yaml: &str, line: usize, column: usize) -> (usize, usize) {
    let mut lines = 1;
    let mut last_start = 0;
    let mut chars = yaml.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = match c {
            '\r' if chars.peek().is_some_and(|&(_, n)| n == '\n') => continue,
            '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}' => i + c.len_utf8(),
            _ => continue,
        };
        lines += 1;
        last_start = end;
    }
    if line <= lines {
        return (line, column);
    }
    (lines, yaml[last_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_items_and_falls_back_to_ancestors() {
        let y =
            "a: 1\nsteps:\n  - fault: x\n    params: {signal: LOUD}\n  - fault: y\nlist: [p, q]\n";
        let l = Locations::of(y);
        assert_eq!(l.find("a"), Some((1, 1)));
        assert_eq!(l.find("steps[0].params.signal"), Some((4, 14)));
        assert_eq!(l.find("steps[1].fault"), Some((5, 5)));
        assert_eq!(l.find("steps[1]"), Some((5, 5)));
        assert_eq!(
            l.find("steps[1].target"),
            Some((5, 5)),
            "missing key: the item"
        );
        assert_eq!(l.find("list[1]"), Some((6, 11)));
        assert_eq!(l.find("nothing.here"), None);
        assert!(Locations::of(": : [").find("a").is_none());
    }

    /// A seeded random walk over YAML-ish text: parsing and locating never panic.
    #[test]
    fn never_panics_on_random_yaml_ish_text() {
        const PIECES: &[&str] = &[
            "a",
            ": ",
            "\n",
            "  ",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "&x ",
            "*x",
            "!!str ",
            "'",
            "\"",
            "#",
            "|",
            ">",
            "? ",
            "---",
            "steps",
            "params",
            "signal",
            "apiVersion: faultline.dev/v1\n",
            "\t",
            "%",
            "@",
            "0",
            "1s",
            "\u{0}",
        ];
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                text.push_str(PIECES[(seed >> 33) as usize % PIECES.len()]);
            }
            let _ = Locations::of(&text).find("steps[0].params.signal");
            let _ = crate::parse_template(&text);
        }
    }
}
