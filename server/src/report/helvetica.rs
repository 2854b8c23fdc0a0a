//! Text for the PDF in the base-14 fonts Helvetica and Helvetica-Bold, which every PDF reader
//! has, so nothing is embedded: characters to WinAnsiEncoding bytes, and the fonts' advance
//! widths (Adobe's AFM metrics, in 1/1000 em) to measure and wrap lines.

/// Helvetica, characters 32..=126.
const REGULAR: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 to 9
    278, 278, 584, 584, 584, 556, 1015, // : to @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // A to Z
    278, 278, 278, 469, 556, 333, // [ to `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500,
    278, 556, 500, 722, 500, 500, 500, // a to z
    334, 260, 334, 584, // { to ~
];

/// Helvetica-Bold, characters 32..=126.
const BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 to 9
    333, 333, 584, 584, 584, 611, 975, // : to @
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667,
    611, 722, 667, 944, 667, 667, 611, // A to Z
    333, 278, 333, 584, 556, 333, // [ to `
    556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556,
    333, 611, 556, 778, 556, 556, 500, // a to z
    389, 280, 389, 584, // { to ~
];

/// The WinAnsiEncoding byte of `c`, or a stand-in: `?` for what the encoding lacks.
fn byte(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '™' => 0x99,
        '\t' | '\n' | '\r' => b' ',
        _ => b'?',
    }
}

/// `s` in WinAnsiEncoding; a few common symbols outside it are spelled out.
pub fn encode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '→' => out.extend_from_slice(b"->"),
            '←' => out.extend_from_slice(b"<-"),
            '≥' => out.extend_from_slice(b">="),
            '≤' => out.extend_from_slice(b"<="),
            '≈' => out.push(b'~'),
            c => out.push(byte(c)),
        }
    }
    out
}

/// Width in 1/1000 em of one WinAnsi byte.
fn advance(b: u8, bold: bool) -> u16 {
    let table = if bold { &BOLD } else { &REGULAR };
    match b {
        32..=126 => table[(b - 32) as usize],
        0x85 | 0x97 => 1000,
        0x95 => 350,
        0x91 | 0x92 => 222,
        0x93 | 0x94 => 333,
        0xb7 => 278,
        0xd7 => 584,
        _ => 556,
    }
}

/// Width of `s` at `size` points.
pub fn width(s: &str, size: f32, bold: bool) -> f32 {
    encode(s)
        .iter()
        .map(|b| advance(*b, bold) as f32)
        .sum::<f32>()
        * size
        / 1000.0
}

/// `s` broken into lines no wider than `max` points: at spaces, and inside a word only when
/// the word alone is too wide.
pub fn wrap(s: &str, size: f32, bold: bool, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for para in s.split('\n') {
        let mut line = String::new();
        for word in para.split(' ') {
            let candidate = if line.is_empty() {
                word.to_string()
            } else {
                format!("{line} {word}")
            };
            if width(&candidate, size, bold) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // A word wider than the line is cut where it fills it.
            let mut rest = word.to_string();
            while width(&rest, size, bold) > max {
                let mut cut = String::new();
                for c in rest.chars() {
                    let mut next = cut.clone();
                    next.push(c);
                    if width(&next, size, bold) > max && !cut.is_empty() {
                        break;
                    }
                    cut = next;
                }
                rest = rest[cut.len()..].to_string();
                lines.push(cut);
            }
            line = rest;
        }
        lines.push(line);
    }
    lines
}

/// `s` cut to `max` points with an ellipsis.
pub fn fit(s: &str, size: f32, bold: bool, max: f32) -> String {
    if width(s, size, bold) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    for c in s.chars() {
        let mut next = out.clone();
        next.push(c);
        if width(&next, size, bold) + width("…", size, bold) > max {
            break;
        }
        out = next;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_afm_metrics() {
        // "Hello": H 722 + e 556 + l 222 + l 222 + o 556 = 2278 at 10 pt.
        assert!((width("Hello", 10.0, false) - 22.78).abs() < 1e-3);
        assert!(
            (width("Hello", 10.0, true) - (722.0 + 556.0 + 278.0 + 278.0 + 611.0) / 100.0).abs()
                < 1e-3
        );
        assert_eq!(encode("–→é"), vec![0x96, b'-', b'>', 0xe9]);
        assert_eq!(encode("日本"), b"??");
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_long_words() {
        let lines = wrap("the quick brown fox jumps", 10.0, false, 60.0);
        assert!(lines.len() > 1);
        assert!(
            lines.iter().all(|l| width(l, 10.0, false) <= 60.0),
            "{lines:?}"
        );
        assert_eq!(lines.join(" "), "the quick brown fox jumps");
        let long = wrap(&"x".repeat(100), 10.0, false, 50.0);
        assert!(long.len() > 1 && long.iter().all(|l| width(l, 10.0, false) <= 50.0));
        assert_eq!(long.concat(), "x".repeat(100));
        assert_eq!(
            fit("abcdefghij", 10.0, false, 30.0).chars().last(),
            Some('…')
        );
    }
}
