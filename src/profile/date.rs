//! A calendar date written `YYYY-MM-DD`: the value of date questions and the bounds an
//! administrator sets on them. Only real dates (leap years included) can be built.

use std::fmt;
use std::str::FromStr;

/// A proleptic Gregorian date from 0001-01-01 to 9999-12-31. Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    // Field order makes the derived `Ord` chronological.
    year: u16,
    month: u8,
    day: u8,
}

/// Why a string is not a [`CalendarDate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("expected a date written YYYY-MM-DD")]
    Format,
    #[error("that day does not exist in the calendar")]
    NoSuchDay,
}

impl CalendarDate {
    /// The date `year-month-day`, if it exists.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month);
        valid.then_some(Self { year, month, day })
    }

    pub fn year(&self) -> u16 {
        self.year
    }
    pub fn month(&self) -> u8 {
        self.month
    }
    pub fn day(&self) -> u8 {
        self.day
    }
}

fn is_leap_year(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl FromStr for CalendarDate {
    type Err = DateError;

    /// Exactly `YYYY-MM-DD` (ten ASCII characters), as HTML date inputs send it.
    fn from_str(s: &str) -> Result<Self, DateError> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(DateError::Format);
        }
        let number = |range: std::ops::Range<usize>| {
            b[range]
                .iter()
                .fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'))
        };
        let (year, month, day) = (number(0..4), number(5..7), number(8..10));
        // month and day have two digits, so they fit in u8.
        let month = u8::try_from(month).map_err(|_| DateError::NoSuchDay)?;
        let day = u8::try_from(day).map_err(|_| DateError::NoSuchDay)?;
        Self::new(year, month, day).ok_or(DateError::NoSuchDay)
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CalendarDate, DateError> {
        s.parse()
    }

    #[test]
    fn real_dates_parse_and_print_back() {
        for s in [
            "2024-02-29",
            "2000-02-29",
            "0001-01-01",
            "9999-12-31",
            "1999-12-31",
        ] {
            assert_eq!(parse(s).expect(s).to_string(), s);
        }
    }

    #[test]
    fn days_that_do_not_exist_are_refused() {
        for s in [
            "2023-02-29",
            "1900-02-29",
            "2024-02-30",
            "2024-04-31",
            "2024-13-01",
            "2024-00-10",
            "2024-01-00",
            "0000-01-01",
        ] {
            assert_eq!(parse(s), Err(DateError::NoSuchDay), "{s}");
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        for s in [
            "",
            "2024-2-29",
            "24-02-29",
            "2024/02/29",
            "2024-02-29T00:00",
            " 2024-02-29",
            "+024-02-29",
            "２０２４-02-29",
            "2024-0a-01",
        ] {
            assert_eq!(parse(s), Err(DateError::Format), "{s}");
        }
    }

    #[test]
    fn dates_order_chronologically() {
        assert!(parse("1999-12-31").expect("d") < parse("2000-01-01").expect("d"));
        assert!(parse("2000-02-01").expect("d") > parse("2000-01-31").expect("d"));
    }
}
