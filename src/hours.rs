//! Business hours: when the support team works, parsed from
//! `handoff.business_hours` (e.g. `"Mon-Fri 09:00-17:00; Sat 10:00-14:00"`)
//! in an IANA time zone. Pure: configuration validation and the desk both
//! use it.

/// When the support team works, e.g. `"Mon-Fri 09:00-17:00"` or
/// `"Mon-Fri 09:00-17:00; Sat 10:00-14:00"`, in an IANA time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    /// (weekday 0 = Monday, start minute, end minute).
    spans: Vec<(u32, u32, u32)>,
    tz: chrono_tz::Tz,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn parse_day(text: &str) -> Result<u32, String> {
    let t = text.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| t.starts_with(d))
        .map(|i| i as u32)
        .ok_or_else(|| {
            format!("`{text}` is not a weekday; use Mon, Tue, Wed, Thu, Fri, Sat or Sun")
        })
}

fn parse_time(text: &str) -> Result<u32, String> {
    let (h, m) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a time; use HH:MM"))?;
    let h: u32 = h
        .parse()
        .map_err(|_| format!("`{text}` is not a time; use HH:MM"))?;
    let m: u32 = m
        .parse()
        .map_err(|_| format!("`{text}` is not a time; use HH:MM"))?;
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(format!("`{text}` is not a time of day"));
    }
    Ok(h * 60 + m)
}

impl BusinessHours {
    /// Parses the `handoff.business_hours` text in zone `tz`.
    ///
    /// # Errors
    /// A message saying which part is wrong and the expected form.
    pub fn parse(text: &str, tz: &str) -> Result<Self, String> {
        let tz: chrono_tz::Tz = tz
            .parse()
            .map_err(|_| format!("`{tz}` is not an IANA time zone such as Europe/Berlin"))?;
        let mut spans = Vec::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (days, hours) = part.split_once(' ').ok_or_else(|| {
                format!("`{part}`: expected DAYS HH:MM-HH:MM, e.g. Mon-Fri 09:00-17:00")
            })?;
            let (from_day, to_day) = match days.split_once('-') {
                Some((a, b)) => (parse_day(a)?, parse_day(b)?),
                None => (parse_day(days)?, parse_day(days)?),
            };
            let (start, end) = hours
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("`{hours}`: expected HH:MM-HH:MM"))?;
            let (start, end) = (parse_time(start)?, parse_time(end)?);
            if start >= end {
                return Err(format!("`{hours}`: the end must be after the start"));
            }
            let mut day = from_day;
            loop {
                spans.push((day, start, end));
                if day == to_day {
                    break;
                }
                day = (day + 1) % 7;
            }
        }
        if spans.is_empty() {
            return Err("no opening hours given; use e.g. Mon-Fri 09:00-17:00".into());
        }
        Ok(Self { spans, tz })
    }

    /// Whether the team works at `now`.
    pub fn is_open(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        use chrono::{Datelike, Timelike};
        let local = now.with_timezone(&self.tz);
        let day = local.weekday().num_days_from_monday();
        let minute = local.hour() * 60 + local.minute();
        self.spans
            .iter()
            .any(|&(d, s, e)| d == day && s <= minute && minute < e)
    }

    /// When the team is next at work after `now` (`None` if open now),
    /// phrased for customers, e.g. "Monday at 09:00 (Europe/Berlin)".
    pub fn back_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
        use chrono::{Datelike, Duration, Timelike};
        if self.is_open(now) {
            return None;
        }
        let local = now.with_timezone(&self.tz);
        let today = local.weekday().num_days_from_monday();
        let minute = local.hour() * 60 + local.minute();
        let mut best: Option<(u32, u32)> = None;
        for &(d, s, _) in &self.spans {
            let mut ahead = (d + 7 - today) % 7;
            if ahead == 0 && s <= minute {
                ahead = 7;
            }
            if best.is_none_or(|(ba, bs)| (ahead, s) < (ba, bs)) {
                best = Some((ahead, s));
            }
        }
        let (ahead, start) = best?;
        let day = local.date_naive() + Duration::days(i64::from(ahead));
        let when = match ahead {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            _ => day.format("%A").to_string(),
        };
        Some(format!(
            "{when} at {:02}:{:02} ({})",
            start / 60,
            start % 60,
            self.tz
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours() {
        use chrono::TimeZone;
        let hours = BusinessHours::parse("Mon-Fri 09:00-17:00", "Europe/Berlin").unwrap();
        // Tuesday 2026-11-24 10:00 UTC = 11:00 Berlin: open.
        let tue = chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 10, 0, 0)
            .unwrap();
        assert!(hours.is_open(tue));
        assert_eq!(hours.back_at(tue), None);
        // Saturday: back on Monday.
        let sat = chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .unwrap();
        assert!(!hours.is_open(sat));
        assert_eq!(
            hours.back_at(sat).as_deref(),
            Some("Monday at 09:00 (Europe/Berlin)")
        );
        // Tuesday 20:00 Berlin: tomorrow.
        let evening = chrono::Utc
            .with_ymd_and_hms(2026, 11, 24, 19, 0, 0)
            .unwrap();
        assert_eq!(
            hours.back_at(evening).as_deref(),
            Some("tomorrow at 09:00 (Europe/Berlin)")
        );
        assert!(BusinessHours::parse("Mon-Fri 9-5", "UTC").is_err());
        assert!(BusinessHours::parse("Funday 09:00-10:00", "UTC").is_err());
        assert!(BusinessHours::parse("Mon 09:00-17:00", "Mars/Base").is_err());
    }
}
