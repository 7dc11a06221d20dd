//! The console's dashboard: the report's figures over a date range, as
//! series (one value per day or week, or one per category) ready to be
//! drawn or downloaded.
//!
//! Every figure comes from [`report::compute`] over the same
//! [`report::Filter`] a `switchboard report` for that range uses, so the
//! dashboard and `report --json` never disagree: the totals are the report
//! for the whole range, each point of a time series the report for its
//! day (or week). Days are UTC days; a range is `from` to `to`, both
//! included.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate};
use serde::Serialize;

use crate::clock::Millis;
use crate::report::{self, Filter, Gap, Report, Snapshot};
use crate::store::{self, Store};

const DAY_MS: Millis = 24 * 3600 * 1000;
/// Longest range, in days.
pub const MAX_DAYS: i64 = 731;
/// Ranges longer than this many days are drawn week by week.
const DAILY_UP_TO: i64 = 62;

/// Why a range is refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RangeError {
    /// A date that is not `YYYY-MM-DD`.
    #[error("`{0}` is not a date; use YYYY-MM-DD, e.g. 2026-01-31")]
    BadDate(String),
    /// `to` before `from`.
    #[error("the range ends ({to}) before it starts ({from})")]
    Backwards {
        /// Start.
        from: NaiveDate,
        /// End.
        to: NaiveDate,
    },
    /// More than [`MAX_DAYS`].
    #[error("the range is {0} days long; at most {MAX_DAYS} days are shown")]
    TooLong(i64),
}

/// A range of UTC days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
}

/// The UTC day of `at`.
pub fn day_of(at: Millis) -> NaiveDate {
    DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .date_naive()
}

fn start_of(day: NaiveDate) -> Millis {
    day.and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
        .timestamp_millis()
}

impl Range {
    /// The range from the texts `from` and `to` (`YYYY-MM-DD`, either may
    /// be empty); without `to` it ends today, without `from` it is 30 days.
    ///
    /// # Errors
    /// A date that does not parse, a backwards or too long range.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: Millis) -> Result<Self, RangeError> {
        let date = |s: &str| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| RangeError::BadDate(s.chars().take(40).collect()))
        };
        fn nonempty(s: Option<&str>) -> Option<&str> {
            s.filter(|s| !s.trim().is_empty())
        }
        let to = match nonempty(to) {
            Some(s) => date(s)?,
            None => day_of(now),
        };
        let from = match nonempty(from) {
            Some(s) => date(s)?,
            None => to - chrono::Days::new(29),
        };
        if to < from {
            return Err(RangeError::Backwards { from, to });
        }
        let range = Self { from, to };
        if range.days() > MAX_DAYS {
            return Err(RangeError::TooLong(range.days()));
        }
        Ok(range)
    }

    /// Days in the range.
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Start of the first day.
    pub fn start(&self) -> Millis {
        start_of(self.from)
    }

    /// End of the last day (exclusive).
    pub fn end(&self) -> Millis {
        start_of(self.to) + DAY_MS
    }

    /// Days per point of a time series: 1, or 7 for long ranges.
    pub fn step_days(&self) -> i64 {
        if self.days() > DAILY_UP_TO { 7 } else { 1 }
    }

    /// The buckets: (first day, start, end), the last one cut at the end.
    pub fn buckets(&self) -> Vec<(NaiveDate, Millis, Millis)> {
        let step = self.step_days() * DAY_MS;
        let mut out = Vec::new();
        let mut start = self.start();
        while start < self.end() {
            let end = (start + step).min(self.end());
            out.push((day_of(start), start, end));
            start = end;
        }
        out
    }
}

/// One point in time of the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// First day of the bucket.
    pub day: NaiveDate,
    /// The report for the bucket.
    pub report: Report,
    /// Conversations by channel.
    pub volume: BTreeMap<String, u64>,
    /// 👍 on answers.
    pub up: u64,
    /// 👎 on answers.
    pub down: u64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Days per point.
    pub step_days: i64,
    /// The channel shown (all when `None`).
    pub channel: Option<String>,
    /// Every channel with conversations (for the filter).
    pub channels: Vec<String>,
    /// The report for the whole range.
    pub totals: Report,
    /// 👍 on answers in the range.
    pub up: u64,
    /// 👎 on answers in the range.
    pub down: u64,
    /// Conversations by channel in the range.
    pub volume: BTreeMap<String, u64>,
    /// One point per day (or week).
    pub points: Vec<Point>,
    /// Knowledge gaps in the range.
    pub gaps: Vec<Gap>,
}

/// The filter of `report` for `range` and `channel`.
pub fn filter(range: &Range, channel: Option<&str>) -> Filter {
    Filter {
        since: Some(range.start()),
        until: Some(range.end()),
        channel: channel.map(str::to_string),
        agent: None,
    }
}

/// Conversations by channel and the 👍/👎 under `filter`.
fn counts(data: &Snapshot, filter: &Filter) -> (BTreeMap<String, u64>, u64, u64) {
    let mut volume = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    for c in data.conversations.iter().filter(|c| filter.keeps(c)) {
        *volume.entry(c.channel.clone()).or_default() += 1;
        ids.insert(c.id.as_str());
    }
    let (mut up, mut down) = (0, 0);
    for m in data
        .messages
        .iter()
        .filter(|m| ids.contains(m.conversation_id.as_str()))
    {
        match m.feedback {
            Some(v) if v > 0 => up += 1,
            Some(v) if v < 0 => down += 1,
            _ => {}
        }
    }
    (volume, up, down)
}

/// Builds the dashboard for `range` and `channel`; the knowledge gaps
/// (slower: they read every conversation's events) only `with_gaps`.
///
/// # Errors
/// On a database failure.
pub async fn build(
    store: &Store,
    range: &Range,
    channel: Option<&str>,
    with_gaps: bool,
) -> Result<Dashboard, store::Error> {
    let whole = filter(range, channel);
    let data = Snapshot::load(store, whole.since).await?;
    let channels: BTreeSet<String> = data
        .conversations
        .iter()
        .map(|c| c.channel.clone())
        .collect();
    let points = range
        .buckets()
        .into_iter()
        .map(|(day, since, until)| {
            let f = Filter {
                since: Some(since),
                until: Some(until),
                ..whole.clone()
            };
            let (volume, up, down) = counts(&data, &f);
            Point {
                day,
                report: report::compute(&data, &f),
                volume,
                up,
                down,
            }
        })
        .collect();
    let (volume, up, down) = counts(&data, &whole);
    Ok(Dashboard {
        from: range.from,
        to: range.to,
        step_days: range.step_days(),
        channel: channel.map(str::to_string),
        channels: channels.into_iter().collect(),
        totals: report::compute(&data, &whole),
        up,
        down,
        volume,
        points,
        gaps: if with_gaps {
            report::gaps(store, &whole).await?
        } else {
            Vec::new()
        },
    })
}

/// A series: values over time (one or more lines), or one value per
/// category (bars).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Series {
    /// Lines over time.
    Time {
        /// Title.
        title: String,
        /// First day of each point.
        days: Vec<NaiveDate>,
        /// Named lines, one value (or none) per day.
        lines: Vec<(String, Vec<Option<f64>>)>,
    },
    /// A value per category.
    Bars {
        /// Title.
        title: String,
        /// Category and value.
        bars: Vec<(String, f64)>,
    },
}

/// Picks one figure out of a point.
type Pick = dyn Fn(&Point) -> Option<f64>;

/// The names of the series, in the order the dashboard shows them.
pub const SERIES: [&str; 12] = [
    "volume",
    "channels",
    "csat",
    "nps",
    "ces",
    "containment",
    "handoff_reasons",
    "first_response",
    "resolution",
    "fcr",
    "feedback",
    "gaps",
];

impl Dashboard {
    /// The series called `name` (one of [`SERIES`]).
    pub fn series(&self, name: &str) -> Option<Series> {
        let time = |title: &str, lines: Vec<(&str, &Pick)>| Series::Time {
            title: title.into(),
            days: self.points.iter().map(|p| p.day).collect(),
            lines: lines
                .into_iter()
                .map(|(n, f)| (n.to_string(), self.points.iter().map(f).collect()))
                .collect(),
        };
        let bars = |title: &str, bars: Vec<(String, f64)>| Series::Bars {
            title: title.into(),
            bars,
        };
        Some(match name {
            "volume" => {
                let shown: Vec<&String> = self.volume.keys().collect();
                Series::Time {
                    title: "Conversations by channel".into(),
                    days: self.points.iter().map(|p| p.day).collect(),
                    lines: shown
                        .into_iter()
                        .map(|ch| {
                            let values = self
                                .points
                                .iter()
                                .map(|p| Some(p.volume.get(ch).copied().unwrap_or(0) as f64))
                                .collect();
                            (ch.clone(), values)
                        })
                        .collect(),
                }
            }
            "channels" => bars(
                "Conversations per channel",
                self.volume
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as f64))
                    .collect(),
            ),
            "csat" => time(
                "CSAT (% of ratings 4–5)",
                vec![("csat_score", &|p: &Point| p.report.csat_score)],
            ),
            "nps" => time("NPS", vec![("nps", &|p: &Point| p.report.nps)]),
            "ces" => time(
                "Customer effort (1–7)",
                vec![("ces_average", &|p: &Point| p.report.ces_average)],
            ),
            "containment" => time(
                "Bot containment and escalation (share of conversations)",
                vec![
                    ("containment_rate", &|p: &Point| p.report.containment_rate),
                    ("escalation_rate", &|p: &Point| p.report.escalation_rate),
                ],
            ),
            "handoff_reasons" => bars(
                "Hand-offs by reason",
                self.totals
                    .handoff_reasons
                    .iter()
                    .map(|(k, v)| (k.clone(), *v as f64))
                    .collect(),
            ),
            "first_response" => time(
                "Human first response (seconds from hand-off)",
                vec![
                    ("first_response_secs_p50", &|p: &Point| {
                        p.report.first_response_secs_p50
                    }),
                    ("first_response_secs_p90", &|p: &Point| {
                        p.report.first_response_secs_p90
                    }),
                ],
            ),
            "resolution" => time(
                "Human resolution (seconds from hand-off)",
                vec![
                    ("resolution_secs_p50", &|p: &Point| {
                        p.report.resolution_secs_p50
                    }),
                    ("resolution_secs_p90", &|p: &Point| {
                        p.report.resolution_secs_p90
                    }),
                ],
            ),
            "fcr" => time(
                "First-contact resolution (share)",
                vec![("first_contact_resolution_rate", &|p: &Point| {
                    p.report.first_contact_resolution_rate
                })],
            ),
            "feedback" => time(
                "Answers rated 👍 / 👎",
                vec![
                    ("up", &|p: &Point| Some(p.up as f64)),
                    ("down", &|p: &Point| Some(p.down as f64)),
                ],
            ),
            "gaps" => bars(
                "Knowledge gaps (questions by topic)",
                self.gaps
                    .iter()
                    .map(|g| (g.term.clone(), g.count as f64))
                    .collect(),
            ),
            _ => return None,
        })
    }
}

/// Text for a CSV cell that a spreadsheet will not run as a formula.
pub fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The series as CSV: `day,<line>…` for lines over time, `<name>,value`
/// for bars. Missing values are empty cells.
pub fn csv(series: &Series) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let number = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let result = match series {
        Series::Time { days, lines, .. } => {
            let mut header = vec!["day".to_string()];
            header.extend(lines.iter().map(|(n, _)| csv_text(n)));
            let mut result = w.write_record(&header);
            for (i, day) in days.iter().enumerate() {
                let mut row = vec![day.to_string()];
                row.extend(lines.iter().map(|(_, v)| number(v[i])));
                result = result.and_then(|()| w.write_record(&row));
            }
            result
        }
        Series::Bars { bars, .. } => {
            let mut result = w.write_record(["name", "value"]);
            for (name, value) in bars {
                result =
                    result.and_then(|()| w.write_record([csv_text(name), number(Some(*value))]));
            }
            result
        }
    };
    // Writing to memory cannot fail.
    debug_assert!(result.is_ok());
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Millis = 1_764_633_600_000; // 2025-12-02T00:00:00Z

    #[test]
    fn ranges() {
        let r = Range::parse(None, None, NOW + 5).unwrap();
        assert_eq!(r.to.to_string(), "2025-12-02");
        assert_eq!(r.days(), 30);
        assert_eq!(r.buckets().len(), 30);
        assert_eq!(r.end(), NOW + DAY_MS);
        let r = Range::parse(Some("2025-01-01"), Some("2025-03-31"), NOW).unwrap();
        assert_eq!(r.step_days(), 7);
        let b = r.buckets();
        assert_eq!(b.len(), 13);
        assert_eq!(
            b.last().unwrap().2,
            r.end(),
            "the last week is cut at the end"
        );
        assert!(matches!(
            Range::parse(Some("2025-02-01"), Some("2025-01-01"), NOW),
            Err(RangeError::Backwards { .. })
        ));
        assert!(matches!(
            Range::parse(Some("1/2/2025"), None, NOW),
            Err(RangeError::BadDate(_))
        ));
        assert!(matches!(
            Range::parse(Some("2020-01-01"), Some("2025-01-01"), NOW),
            Err(RangeError::TooLong(_))
        ));
    }

    proptest! {
        #[test]
        fn csv_cells_read_back(names in proptest::collection::vec(any::<String>(), 1..5)) {
            let series = Series::Bars {
                title: "t".into(),
                bars: names.iter().enumerate().map(|(i, n)| (n.clone(), i as f64)).collect(),
            };
            let text = csv(&series);
            let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            prop_assert_eq!(rows.len(), names.len());
            for (i, (row, name)) in rows.iter().zip(&names).enumerate() {
                prop_assert_eq!(row.len(), 2);
                let expected = csv_text(name);
                prop_assert_eq!(&row[0], expected.as_str());
                prop_assert!(!row[0].starts_with(['=', '+', '-', '@']));
                prop_assert_eq!(row[1].parse::<f64>().unwrap(), i as f64);
            }
        }
    }
}
