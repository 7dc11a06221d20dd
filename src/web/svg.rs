//! Small charts drawn as SVG on the server: lines over time and horizontal
//! bars. Every text (titles, channel names, hand-off reasons, knowledge-gap
//! terms) comes from outside and is escaped; the layout never depends on
//! a label's text, only on how many there are.

use std::fmt::Write as _;

use crate::dashboard::Series;

const WIDTH: f64 = 640.0;
const COLORS: [&str; 6] = [
    "#1d4ed8", "#b91c1c", "#047857", "#92400e", "#7c3aed", "#0e7490",
];
/// Longest label drawn, in characters.
const LABEL_CHARS: usize = 28;

/// `text` safe inside an XML element or a quoted attribute: the five
/// special characters as entities, characters XML 1.0 does not allow
/// dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, ending in `…` when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e12 {
        format!("{v:.0}")
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

fn open(out: &mut String, height: f64, title: &str) {
    let title = escape(title);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" font-family="system-ui, sans-serif" font-size="11"><title>{title}</title><rect width="100%" height="100%" fill="#fff"/><text x="8" y="16" font-size="13" font-weight="600">{title}</text>"##
    );
}

fn empty(out: &mut String, height: f64) {
    let _ = write!(
        out,
        r##"<text x="{}" y="{}" text-anchor="middle" fill="#6b7280">No data in this range</text></svg>"##,
        WIDTH / 2.0,
        height / 2.0
    );
}

/// The chart of `series`.
pub fn chart(series: &Series) -> String {
    match series {
        Series::Time { title, days, lines } => {
            let labels: Vec<String> = days
                .iter()
                .map(|d| d.format("%b %-d").to_string())
                .collect();
            time_chart(title, &labels, lines)
        }
        Series::Bars { title, bars } => bar_chart(title, bars),
    }
}

/// Lines over time: `labels` along the bottom, one line per entry of
/// `lines` (a gap where a value is missing), a legend on top.
pub fn time_chart(title: &str, labels: &[String], lines: &[(String, Vec<Option<f64>>)]) -> String {
    let height = 240.0;
    // The legend: three names a row.
    let legend_rows = lines.len().div_ceil(3).max(1);
    let (left, right, top, bottom) = (
        56.0,
        WIDTH - 12.0,
        32.0 + 12.0 * legend_rows as f64,
        height - 28.0,
    );
    let mut out = String::new();
    open(&mut out, height, title);
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    if values.is_empty() || labels.is_empty() {
        empty(&mut out, height);
        return out;
    }
    let lo = values.iter().copied().fold(0.0_f64, f64::min);
    let mut hi = values.iter().copied().fold(0.0_f64, f64::max);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    let n = labels.len();
    let x = |i: usize| {
        if n == 1 {
            (left + right) / 2.0
        } else {
            left + (right - left) * i as f64 / (n - 1) as f64
        }
    };
    for k in 0..=4 {
        let v = lo + (hi - lo) * f64::from(k) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{right}" y1="{0:.1}" y2="{0:.1}" stroke="#e5e7eb"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="#374151">{3}</text>"##,
            y(v),
            left - 4.0,
            y(v) + 4.0,
            escape(&number(v))
        );
    }
    let every = n.div_ceil(8).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            out,
            r##"<text x="{:.1}" y="{}" text-anchor="middle" fill="#374151">{}</text>"##,
            x(i),
            bottom + 16.0,
            escape(&clip(label, 12))
        );
    }
    for (k, (name, points)) in lines.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let _ = write!(
            out,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            8 + 200 * (k % 3),
            24 + 12 * (k / 3),
            22 + 200 * (k % 3),
            33 + 12 * (k / 3),
            escape(&clip(name, 30))
        );
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in points.iter().enumerate().take(n) {
            match v {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*v)
                    );
                    pen_down = true;
                    let _ = write!(
                        out,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"><title>{}: {}</title></circle>"#,
                        x(i),
                        y(*v),
                        escape(&clip(&labels[i], 12)),
                        escape(&number(*v))
                    );
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<path d="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
                path.trim_end()
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// One horizontal bar per entry, label on the left, value at the end.
pub fn bar_chart(title: &str, bars: &[(String, f64)]) -> String {
    let row = 22.0;
    let top = 30.0;
    let height = top + row * bars.len().max(3) as f64 + 8.0;
    let (left, right) = (200.0, WIDTH - 60.0);
    let mut out = String::new();
    open(&mut out, height, title);
    if bars.is_empty() {
        empty(&mut out, height);
        return out;
    }
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = top + row * i as f64;
        let w = (value.max(0.0) / max * (right - left)).max(1.0);
        let _ = write!(
            out,
            r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#374151">{}</text><rect x="{left}" y="{:.1}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            left - 6.0,
            y + 14.0,
            escape(&clip(label, LABEL_CHARS)),
            y + 3.0,
            row - 6.0,
            COLORS[0],
            left + w + 4.0,
            y + 14.0,
            escape(&number(*value))
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The tags of `svg` (names and attributes), in order. Escaped text
    /// holds no `<` or `>`, so this split is exact.
    fn tags(svg: &str) -> Vec<&str> {
        svg.split('<')
            .skip(1)
            .map(|s| s.split('>').next().unwrap_or(""))
            .collect()
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    }

    fn xml_char(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r') || (c as u32 >= 0x20 && c != '\u{FFFE}' && c != '\u{FFFF}')
    }

    #[test]
    fn a_label_cannot_open_a_tag() {
        let svg = bar_chart("<b>", &[("</text><script>alert(1)</script>".into(), 3.0)]);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;/text&gt;&lt;script&gt;"), "{svg}");
    }

    proptest! {
        #[test]
        fn escaping_is_exact_and_inert(text in any::<String>()) {
            let e = escape(&text);
            prop_assert!(!e.contains(['<', '>', '"', '\'']));
            prop_assert!(e.chars().all(xml_char));
            for (i, _) in e.match_indices('&') {
                let rest = &e[i..];
                prop_assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|x| rest.starts_with(x)));
            }
            let kept: String = text.chars().filter(|c| xml_char(*c)).collect();
            prop_assert_eq!(unescape(&e), kept);
        }

        #[test]
        fn clipping_keeps_a_prefix(text in any::<String>(), max in 1usize..40) {
            let c = clip(&text, max);
            prop_assert!(c.chars().count() <= max);
            let kept = c.strip_suffix('…').unwrap_or(&c);
            prop_assert!(text.starts_with(kept));
        }

        #[test]
        fn labels_never_change_the_markup(
            title in any::<String>(),
            labels in proptest::collection::vec(any::<String>(), 1..6),
        ) {
            let plain: Vec<String> = labels.iter().map(|_| "x".to_string()).collect();
            let bars = |ls: &[String]| ls.iter().map(|l| (l.clone(), 2.0)).collect::<Vec<_>>();
            let (hostile, benign) = (bar_chart(&title, &bars(&labels)), bar_chart("x", &bars(&plain)));
            prop_assert_eq!(tags(&hostile), tags(&benign));
            let lines = |ls: &[String]| ls.iter().map(|l| (l.clone(), vec![Some(1.0); ls.len()])).collect::<Vec<_>>();
            let hostile = time_chart(&title, &labels, &lines(&labels));
            let benign = time_chart("x", &plain, &lines(&plain));
            prop_assert_eq!(tags(&hostile), tags(&benign));
        }
    }
}
