//! `rotation_schedule`: standard 5-field cron expressions (minute hour day-of-month month
//! day-of-week), evaluated in UTC as Vault does.
//!
//! Each field takes `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n`, `a/n`, comma lists, and
//! month and weekday names (`JAN`, `MON`); weekday 7 is Sunday like 0. Descriptors
//! `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight` and `@hourly` are
//! accepted. As in cron, when both day fields are restricted a day matching either one counts.

use time::{Duration, OffsetDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Schedule {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_star: bool,
    weekdays_star: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Schedule {
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let spec = spec.trim();
        let expanded = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields.as_slice() else {
            return Err(format!(
                "expected exactly 5 fields, found {}: {spec}",
                fields.len()
            ));
        };
        let weekdays = field(weekday, 0, 7, &WEEKDAYS, 0)?;
        // 7 is Sunday as well.
        let weekdays = if weekdays & (1 << 7) != 0 {
            (weekdays | 1) & !(1 << 7)
        } else {
            weekdays
        };
        Ok(Self {
            minutes: field(minute, 0, 59, &[], 0)?,
            hours: field(hour, 0, 23, &[], 0)?,
            days: field(day, 1, 31, &[], 0)?,
            months: field(month, 1, 12, &MONTHS, 1)?,
            weekdays,
            days_star: day.starts_with('*'),
            weekdays_star: weekday.starts_with('*'),
        })
    }

    fn day_matches(&self, t: OffsetDateTime) -> bool {
        let dom = self.days & (1 << t.day()) != 0;
        let dow = self.weekdays & (1 << t.weekday().number_days_from_sunday()) != 0;
        if self.days_star || self.weekdays_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching minute strictly after `after` (Unix seconds), within five years.
    pub(crate) fn next(&self, after: i64) -> Option<i64> {
        let start = OffsetDateTime::from_unix_timestamp(after).ok()?;
        let mut t = start.replace_second(0).ok()? + Duration::minutes(1);
        let limit = start + Duration::days(5 * 366);
        while t <= limit {
            if self.months & (1 << u8::from(t.month())) == 0 {
                let (year, month) = if u8::from(t.month()) == 12 {
                    (t.year() + 1, time::Month::January)
                } else {
                    (t.year(), t.month().next())
                };
                let date = time::Date::from_calendar_date(year, month, 1).ok()?;
                t = date.with_time(Time::MIDNIGHT).assume_utc();
                continue;
            }
            if !self.day_matches(t) {
                t = (t.date() + Duration::days(1))
                    .with_time(Time::MIDNIGHT)
                    .assume_utc();
                continue;
            }
            if self.hours & (1 << t.hour()) == 0 {
                t = t.replace_minute(0).ok()? + Duration::hours(1);
                continue;
            }
            if self.minutes & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t.unix_timestamp());
        }
        None
    }
}

fn value(text: &str, names: &[&str], name_base: u64) -> Result<u64, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(name_base + u64::try_from(i).unwrap_or(0));
    }
    text.parse::<u64>()
        .map_err(|_| format!("failed to parse int from {text}"))
}

fn field(text: &str, min: u64, max: u64, names: &[&str], name_base: u64) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("bad step in {item}"))?,
            ),
            None => (item, 1),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, name_base)?, value(b, names, name_base)?)
        } else {
            let v = value(range, names, name_base)?;
            (v, if item.contains('/') { max } else { v })
        };
        if low < min || high > max || low > high {
            return Err(format!("value out of range ({min}-{max}): {item}"));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    // 2023-11-14 22:13:20 UTC, a Tuesday.
    const T: i64 = 1_700_000_000;

    fn next(spec: &str) -> i64 {
        Schedule::parse(spec).unwrap().next(T).unwrap()
    }

    #[test]
    fn next_times_in_utc() {
        assert_eq!(next("* * * * *"), 1_700_000_040); // 22:14:00
        assert_eq!(next("*/5 * * * *"), 1_700_000_100); // 22:15:00
        assert_eq!(next("0 * * * *"), 1_700_002_800); // 23:00
        assert_eq!(next("@daily"), 1_700_006_400); // 15th 00:00
        assert_eq!(next("30 1 * * MON"), 1_700_443_800); // Mon 20th 01:30
        assert_eq!(next("0 0 1 JAN *"), 1_704_067_200); // 2024-01-01
        assert_eq!(next("0 0 13 * 5"), 1_700_179_200); // Fri 17th (either day field)
        assert_eq!(next("0 0 * * 7"), next("0 0 * * 0"));
    }

    #[test]
    fn bad_specs_are_refused() {
        for bad in [
            "",
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "x * * * *",
            "5-1 * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Schedule::parse("0 0 30 2 *").unwrap().next(T).is_none());
    }
}
