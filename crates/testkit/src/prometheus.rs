//! A strict reading of a Prometheus text exposition (format 0.0.4), and the conventions
//! the shop's `/metrics` promises: every family with `# HELP` and `# TYPE`; only counters,
//! gauges and histograms (no summaries, nothing untyped); counters, and only counters,
//! ending in `_total`; durations in seconds; every histogram with its `+Inf` bucket, `_sum`
//! and `_count`. Source: <https://prometheus.io/docs/instrumenting/exposition_formats/> and
//! <https://prometheus.io/docs/practices/naming/>.

use std::collections::BTreeMap;

/// The families of one scrape, by name.
#[derive(Debug, Default)]
pub struct Exposition {
    pub families: BTreeMap<String, Family>,
}

#[derive(Debug, Default)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, …, from `# TYPE`.
    pub kind: Option<String>,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// The sample's own name: the family's, or with `_bucket`, `_sum` or `_count`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

const HISTOGRAM_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

impl Exposition {
    /// Parses `text`; an error names the first line that is not in the format.
    pub fn parse(text: &str) -> Result<Exposition, String> {
        let mut out = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
            if line.trim().is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                let f = out.families.entry(name.to_owned()).or_default();
                if f.help.replace(help.to_owned()).is_some() {
                    return Err(bad("a second HELP"));
                }
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) =
                    rest.split_once(' ').ok_or_else(|| bad("TYPE without a type"))?;
                let f = out.families.entry(name.to_owned()).or_default();
                if !f.samples.is_empty() {
                    return Err(bad("TYPE after the family's samples"));
                }
                if f.kind.replace(kind.to_owned()).is_some() {
                    return Err(bad("a second TYPE"));
                }
            } else if line.starts_with('#') {
                continue;
            } else {
                let sample = parse_sample(line).map_err(|why| bad(&why))?;
                let family =
                    out.family_of(&sample.name).ok_or_else(|| bad("sample of no TYPEd family"))?;
                out.families
                    .get_mut(&family)
                    .ok_or_else(|| bad("lost family"))?
                    .samples
                    .push(sample);
            }
        }
        Ok(out)
    }

    /// The declared family a sample named `name` belongs to.
    fn family_of(&self, name: &str) -> Option<String> {
        if self.families.get(name).is_some_and(|f| f.kind.is_some()) {
            return Some(name.to_owned());
        }
        HISTOGRAM_SUFFIXES.iter().find_map(|s| {
            let base = name.strip_suffix(s)?;
            let f = self.families.get(base)?;
            matches!(f.kind.as_deref(), Some("histogram" | "summary")).then(|| base.to_owned())
        })
    }

    /// Every breach of the conventions in the module doc, one line each.
    pub fn breaches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, f) in &self.families {
            let valid_name = name.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            });
            if !valid_name {
                out.push(format!("{name}: not a valid metric name"));
            }
            if f.help.as_deref().is_none_or(str::is_empty) {
                out.push(format!("{name}: no # HELP"));
            }
            let kind = f.kind.as_deref().unwrap_or("none");
            match kind {
                "counter" if !name.ends_with("_total") => {
                    out.push(format!("{name}: a counter not ending in _total"));
                }
                "gauge" | "histogram" if name.ends_with("_total") => {
                    out.push(format!("{name}: a {kind} ending in _total"));
                }
                "counter" | "gauge" | "histogram" => {}
                other => {
                    out.push(format!("{name}: type {other} (want counter, gauge or histogram)"))
                }
            }
            let time_words = ["duration", "latency", "_age", "_lag", "_time"];
            let timed = time_words.iter().any(|w| name.contains(w));
            let in_seconds = name.contains("_seconds");
            if timed && !in_seconds {
                out.push(format!("{name}: a time not in seconds"));
            }
            if ["_ms", "_millis", "_milliseconds", "_micros"].iter().any(|u| name.contains(u)) {
                out.push(format!("{name}: a unit other than the base unit"));
            }
            if kind == "histogram" {
                out.extend(histogram_breaches(name, f));
            }
        }
        out
    }

    /// The samples called exactly `name` (a family, or `x_bucket`, `x_sum`, `x_count`).
    pub fn samples<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.families.values().flat_map(|f| &f.samples).filter(move |s| s.name == name)
    }

    /// The first sample called `name` whose labels include every one of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&Sample> {
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .filter(|s| s.name == name)
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v)))
    }
}

fn histogram_breaches(name: &str, f: &Family) -> Vec<String> {
    let mut out = Vec::new();
    let series = |suffix: &str| {
        f.samples
            .iter()
            .filter(|s| s.name == format!("{name}{suffix}"))
            .map(|s| {
                let mut l = s.labels.clone();
                l.remove("le");
                l
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    let with_inf: std::collections::BTreeSet<_> = f
        .samples
        .iter()
        .filter(|s| {
            s.name == format!("{name}_bucket") && s.labels.get("le").is_some_and(|v| v == "+Inf")
        })
        .map(|s| {
            let mut l = s.labels.clone();
            l.remove("le");
            l
        })
        .collect();
    let (buckets, sums, counts) = (series("_bucket"), series("_sum"), series("_count"));
    if buckets != with_inf {
        out.push(format!("{name}: a series without a +Inf bucket"));
    }
    if buckets != sums || buckets != counts {
        out.push(format!("{name}: buckets, _sum and _count of different series"));
    }
    out
}

/// `name{k="v",…} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let mut key = String::new();
        let close;
        loop {
            let (i, c) = chars.next().ok_or("unterminated labels")?;
            match c {
                '}' if key.is_empty() => {
                    close = i;
                    break;
                }
                ',' if key.is_empty() => {}
                '=' => {
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return Err("label value not quoted".into());
                    }
                    let mut value = String::new();
                    loop {
                        let (_, c) = chars.next().ok_or("unterminated label value")?;
                        match c {
                            '"' => break,
                            '\\' => match chars.next().map(|(_, c)| c) {
                                Some('\\') => value.push('\\'),
                                Some('"') => value.push('"'),
                                Some('n') => value.push('\n'),
                                _ => return Err("bad escape in a label value".into()),
                            },
                            '\n' => return Err("raw newline in a label value".into()),
                            c => value.push(c),
                        }
                    }
                    if labels.insert(std::mem::take(&mut key), value).is_some() {
                        return Err("a label twice".into());
                    }
                }
                c if c.is_ascii_alphanumeric() || c == '_' => key.push(c),
                c => return Err(format!("bad character {c:?} in a label name")),
            }
        }
        rest = &inner[close + 1..];
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().map_err(|_| format!("bad value {v:?}"))?,
    };
    if let Some(ts) = fields.next() {
        ts.parse::<i64>().map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if fields.next().is_some() {
        return Err("trailing fields".into());
    }
    Ok(Sample { name, labels, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# HELP a_total Things.
# TYPE a_total counter
a_total{k=\"v \\\"q\\\"\"} 3

# HELP d_seconds How long.
# TYPE d_seconds histogram
d_seconds_bucket{le=\"0.1\"} 1
d_seconds_bucket{le=\"+Inf\"} 2
d_seconds_sum 0.3
d_seconds_count 2
";

    #[test]
    fn a_conforming_scrape_passes() {
        let e = Exposition::parse(GOOD).unwrap();
        assert_eq!(e.breaches(), Vec::<String>::new());
        assert_eq!(e.find("a_total", &[("k", "v \"q\"")]).unwrap().value, 3.0);
        assert_eq!(e.samples("d_seconds_count").count(), 1);
    }

    #[test]
    fn each_breach_is_named() {
        let cases = [
            ("# TYPE x counter\nx 1\n", "x: no # HELP"),
            ("# HELP x h\n# TYPE x counter\nx 1\n", "x: a counter not ending in _total"),
            (
                "# HELP x_total h\n# TYPE x_total gauge\nx_total 1\n",
                "x_total: a gauge ending in _total",
            ),
            ("# HELP x h\n# TYPE x summary\nx_sum 1\nx_count 1\n", "x: type summary"),
            (
                "# HELP req_duration_ms h\n# TYPE req_duration_ms gauge\nreq_duration_ms 1\n",
                "a time not in seconds",
            ),
            (
                "# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 1\nh_seconds_sum 1\nh_seconds_count 1\n",
                "without a +Inf bucket",
            ),
        ];
        for (text, want) in cases {
            let b = Exposition::parse(text).unwrap().breaches();
            assert!(b.iter().any(|l| l.contains(want)), "{text:?}: {b:?}");
        }
    }

    #[test]
    fn malformed_lines_are_refused() {
        for text in [
            "x 1\n",
            "# HELP x h\n# TYPE x gauge\nx{k=v} 1\n",
            "# HELP x h\n# TYPE x gauge\nx{k=\"v} 1\n",
            "# HELP x h\n# TYPE x gauge\nx one\n",
            "# HELP x h\n# TYPE x gauge\nx 1\n# TYPE x gauge\n",
        ] {
            assert!(Exposition::parse(text).is_err(), "{text:?}");
        }
    }
}
