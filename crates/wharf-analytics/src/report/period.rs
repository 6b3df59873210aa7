//! Report periods: weeks run Monday through Sunday, months are calendar months, and a period
//! is available from the day after it ends ("Monthly data is available from the first day of
//! the following calendar month"). `DATE_GRANULARITY` and `DATE_REFERENCE` come from here.

use std::fmt;
use std::str::FromStr;

use time::{Date, Month, Weekday};

/// `DATE_GRANULARITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Weekly,
    Monthly,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One week (Monday to Sunday) or one calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    granularity: Granularity,
    start: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a period; write an ISO week such as 2026-W47 or a month such as 2026-11")]
pub struct BadPeriod(String);

impl Period {
    /// The week (Monday to Sunday) holding `date`.
    pub fn week_of(date: Date) -> Self {
        let back = i64::from(date.weekday().number_days_from_monday());
        Self {
            granularity: Granularity::Weekly,
            start: date - time::Duration::days(back),
        }
    }

    /// The calendar month holding `date`.
    pub fn month_of(date: Date) -> Self {
        Self {
            granularity: Granularity::Monthly,
            start: date.replace_day(1).expect("every month has a first day"),
        }
    }

    pub fn containing(granularity: Granularity, date: Date) -> Self {
        match granularity {
            Granularity::Weekly => Self::week_of(date),
            Granularity::Monthly => Self::month_of(date),
        }
    }

    pub fn granularity(&self) -> Granularity {
        self.granularity
    }

    /// The first day: a Monday, or the 1st of the month.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The first day after the period (the next period's start).
    pub fn end(&self) -> Date {
        self.next().start
    }

    /// The last day: a Sunday, or the month's last day.
    pub fn last_day(&self) -> Date {
        self.end()
            .previous_day()
            .expect("dates within time's range")
    }

    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date < self.end()
    }

    pub fn next(&self) -> Self {
        let start = match self.granularity {
            Granularity::Weekly => self.start + time::Duration::days(7),
            Granularity::Monthly => {
                let (year, month) = match self.start.month() {
                    Month::December => (self.start.year() + 1, Month::January),
                    month => (self.start.year(), month.next()),
                };
                Date::from_calendar_date(year, month, 1).expect("valid first of month")
            }
        };
        Self { start, ..*self }
    }

    pub fn previous(&self) -> Self {
        let day_before = self
            .start
            .previous_day()
            .expect("dates within time's range");
        Self::containing(self.granularity, day_before)
    }

    /// The day the period's report becomes available: the day after its last day.
    pub fn available_from(&self) -> Date {
        self.end()
    }

    pub fn is_available(&self, today: Date) -> bool {
        today >= self.available_from()
    }

    /// The latest period whose report is available on `today`.
    pub fn latest_available(granularity: Granularity, today: Date) -> Self {
        Self::containing(granularity, today).previous()
    }

    /// The available periods of the last `months` months, oldest first (the dashboard's 3, 6
    /// or 12 months): for months, the last `months` complete months; for weeks, the complete
    /// weeks starting on or after the same day `months` months before `today`.
    pub fn recent(granularity: Granularity, today: Date, months: u8) -> Vec<Self> {
        let latest = Self::latest_available(granularity, today);
        let mut periods = match granularity {
            Granularity::Monthly => std::iter::successors(Some(latest), |p| Some(p.previous()))
                .take(usize::from(months))
                .collect::<Vec<_>>(),
            Granularity::Weekly => {
                let cutoff = months_before(today, months);
                std::iter::successors(Some(latest), |p| Some(p.previous()))
                    .take_while(|p| p.start >= cutoff)
                    .collect()
            }
        };
        periods.reverse();
        periods
    }

    /// `DATE_REFERENCE`: the first day as `YYYY-MM-DD`.
    pub fn date_reference(&self) -> String {
        format_date(self.start)
    }

    /// The period's name: an ISO week `2026-W47` or a month `2026-11`.
    pub fn name(&self) -> String {
        match self.granularity {
            Granularity::Weekly => {
                let (year, week, _) = self.start.to_iso_week_date();
                format!("{year:04}-W{week:02}")
            }
            Granularity::Monthly => {
                format!(
                    "{:04}-{:02}",
                    self.start.year(),
                    u8::from(self.start.month())
                )
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for Period {
    type Err = BadPeriod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPeriod(s.chars().take(32).collect());
        let (year, rest) = s.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let number = |digits: &str| -> Result<u8, BadPeriod> {
            if digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()) {
                digits.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        match rest.strip_prefix('W') {
            Some(week) => {
                let date = Date::from_iso_week_date(year, number(week)?, Weekday::Monday)
                    .map_err(|_| bad())?;
                Ok(Self::week_of(date))
            }
            None => {
                let month = Month::try_from(number(rest)?).map_err(|_| bad())?;
                let date = Date::from_calendar_date(year, month, 1).map_err(|_| bad())?;
                Ok(Self::month_of(date))
            }
        }
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The same day `months` months earlier, clamped to the month's length (31 March − 1 month is
/// 28 or 29 February).
fn months_before(date: Date, months: u8) -> Date {
    let total = date.year() * 12 + i32::from(u8::from(date.month())) - 1 - i32::from(months);
    let (year, month0) = (total.div_euclid(12), total.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).expect("month in 1..=12");
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).expect("clamped day is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn weeks_run_monday_to_sunday() {
        // 2025-09-29 is the seeds' example of a week start (a Monday).
        for day in [
            date!(2025 - 09 - 29),
            date!(2025 - 10 - 01),
            date!(2025 - 10 - 05),
        ] {
            let week = Period::week_of(day);
            assert_eq!(week.date_reference(), "2025-09-29", "{day}");
            assert_eq!(week.last_day(), date!(2025 - 10 - 05));
            assert_eq!(week.granularity().as_str(), "weekly");
        }
        assert_eq!(
            Period::week_of(date!(2025 - 10 - 06)).date_reference(),
            "2025-10-06"
        );
    }

    #[test]
    fn iso_week_names_use_the_iso_year() {
        assert_eq!(Period::week_of(date!(2026 - 11 - 18)).name(), "2026-W47");
        // 2024-12-30 (Monday) starts ISO week 1 of 2025.
        assert_eq!(Period::week_of(date!(2025 - 01 - 01)).name(), "2025-W01");
        assert_eq!(
            Period::week_of(date!(2025 - 01 - 01)).date_reference(),
            "2024-12-30"
        );
        // 2021-01-03 (Sunday) is in 2020-W53.
        assert_eq!(Period::week_of(date!(2021 - 01 - 03)).name(), "2020-W53");
    }

    #[test]
    fn months() {
        let feb = Period::month_of(date!(2024 - 02 - 29));
        assert_eq!(feb.date_reference(), "2024-02-01");
        assert_eq!(feb.last_day(), date!(2024 - 02 - 29));
        assert_eq!(feb.name(), "2024-02");
        assert_eq!(feb.granularity().to_string(), "monthly");
        let dec = Period::month_of(date!(2025 - 12 - 31));
        assert_eq!(dec.next().date_reference(), "2026-01-01");
        assert_eq!(dec.next().previous(), dec);
        assert!(dec.contains(date!(2025 - 12 - 01)));
        assert!(!dec.contains(date!(2026 - 01 - 01)));
    }

    #[test]
    fn availability() {
        // A month is available from the first day of the following month.
        let nov = Period::month_of(date!(2026 - 11 - 10));
        assert_eq!(nov.available_from(), date!(2026 - 12 - 01));
        assert!(!nov.is_available(date!(2026 - 11 - 30)));
        assert!(nov.is_available(date!(2026 - 12 - 01)));
        // A week is available from the following Monday.
        let week = Period::week_of(date!(2026 - 11 - 18));
        assert_eq!(week.available_from(), date!(2026 - 11 - 23));
        assert!(!week.is_available(date!(2026 - 11 - 22)));

        assert_eq!(
            Period::latest_available(Granularity::Monthly, date!(2026 - 12 - 01)),
            nov
        );
        assert_eq!(
            Period::latest_available(Granularity::Weekly, date!(2026 - 11 - 23)),
            week
        );
    }

    #[test]
    fn recent_periods_for_the_dashboard() {
        let today = date!(2026 - 11 - 22);
        let months: Vec<_> = Period::recent(Granularity::Monthly, today, 3)
            .iter()
            .map(Period::name)
            .collect();
        assert_eq!(months, ["2026-08", "2026-09", "2026-10"]);
        assert_eq!(Period::recent(Granularity::Monthly, today, 12).len(), 12);
        let weeks = Period::recent(Granularity::Weekly, today, 3);
        // 2026-11-22 is a Sunday: its week is not complete yet. Complete weeks starting on or
        // after 2026-08-22: 2026-08-24 … 2026-11-09.
        assert_eq!(weeks.first().unwrap().date_reference(), "2026-08-24");
        assert_eq!(weeks.last().unwrap().date_reference(), "2026-11-09");
        assert_eq!(weeks.len(), 12);
        assert!(weeks.windows(2).all(|w| w[0].next() == w[1]));
    }

    #[test]
    fn months_before_clamps_the_day() {
        assert_eq!(
            months_before(date!(2026 - 05 - 31), 3),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            months_before(date!(2026 - 02 - 15), 12),
            date!(2025 - 02 - 15)
        );
        assert_eq!(
            months_before(date!(2026 - 01 - 10), 1),
            date!(2025 - 12 - 10)
        );
    }

    #[test]
    fn parse_round_trips() {
        for name in ["2026-W47", "2020-W53", "2025-W01", "2026-11", "2024-02"] {
            let period: Period = name.parse().unwrap();
            assert_eq!(period.to_string(), name);
        }
        for bad in [
            "2026-W54", "2026-13", "2026", "26-11", "2026-W5", "2026-1", "x-W01",
        ] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
        assert!(
            "2021-W53".parse::<Period>().is_err(),
            "2021 has 52 ISO weeks"
        );
    }
}
