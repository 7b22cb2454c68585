//! The text of `clock` and `timer` overlays: the time of day in a small strftime-like format (UTC, a fixed
//! offset, or an IANA zone with its daylight saving), or the time since the broadcast went live as H:MM:SS. Pure: the stage asks for the text at each
//! change of second and draws the overlay again only when the text changed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const DEFAULT_CLOCK_FORMAT: &str = "%H:%M:%S";
pub const MAX_FORMAT_CHARS: usize = 64;

/// What a ticking overlay shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Ticking {
    Clock {
        format: ClockFormat,
        zone: Zone,
    },
    /// Time since the broadcast went live; 0:00:00 until then.
    SinceLive,
}

/// The time a ticking overlay is drawn for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub now: SystemTime,
    /// When the broadcast went live; None while it is starting.
    pub live_since: Option<SystemTime>,
}

impl Ticking {
    pub fn text(&self, at: Moment) -> String {
        match self {
            Self::Clock { format, zone } => format.text(unix_seconds(at.now), zone),
            Self::SinceLive => {
                let elapsed = at.live_since.map_or(0, |since| whole_seconds(at.now, since));
                timer_text(elapsed)
            }
        }
    }

    /// The first time after `at.now` at which the text may change: the next whole second of the clock, or of the
    /// time since going live; None while a timer waits for the broadcast to go live.
    pub fn next_change(&self, at: Moment) -> Option<SystemTime> {
        let origin = match self {
            Self::Clock { .. } => UNIX_EPOCH,
            Self::SinceLive => at.live_since?,
        };
        let since = at.now.duration_since(origin).unwrap_or_default();
        Some(origin + Duration::from_secs(since.as_secs() + 1))
    }
}

/// Whole seconds from `since` to `now` (0 if `now` is earlier: a clock set back).
fn whole_seconds(now: SystemTime, since: SystemTime) -> u64 {
    now.duration_since(since).map_or(0, |d| d.as_secs())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    }
}

/// `H:MM:SS`, hours unbounded.
pub fn timer_text(elapsed_secs: u64) -> String {
    let (h, m, s) = (elapsed_secs / 3600, elapsed_secs / 60 % 60, elapsed_secs % 60);
    format!("{h}:{m:02}:{s:02}")
}

/// A clock's time zone: UTC, a fixed offset, or an IANA zone (`Europe/Paris`) whose offset, daylight saving
/// included, is looked up at each moment. Names come from the tz database compiled into the binary (`jiff` with
/// `tzdb-bundle-always`): the container image has no /usr/share/zoneinfo, and a clock must not change with the
/// machine it runs on. A new rule (a country dropping daylight saving) needs a new build.
#[derive(Debug, Clone, PartialEq)]
pub enum Zone {
    Fixed { offset_minutes: i32 },
    Named(jiff::tz::TimeZone),
}

impl Default for Zone {
    fn default() -> Self {
        Self::Fixed { offset_minutes: 0 }
    }
}

impl Zone {
    /// `UTC` (or `Z`), `+HH:MM` / `-HH:MM` up to 14 hours, or an IANA zone name (any case).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return Ok(Self::default());
        }
        let bad = || {
            format!(
                "must be `UTC`, a fixed offset like `+02:00` or `-05:30`, or an IANA zone name like \
                 `Europe/Paris`, got `{text}`"
            )
        };
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            // The longest IANA name has 32 characters: a longer text is not looked up.
            _ if text.len() <= 64 => return jiff::tz::TimeZone::get(text).map(Self::Named).map_err(|_| bad()),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let two_digits = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i32>().ok())
                .flatten()
        };
        let (Some(h), Some(m)) = (two_digits(h), two_digits(m)) else {
            return Err(bad());
        };
        if m >= 60 || h * 60 + m > 14 * 60 {
            return Err(bad());
        }
        Ok(Self::Fixed {
            offset_minutes: sign * (h * 60 + m),
        })
    }

    /// The offset from UTC in seconds at `unix_secs`, and how `%Z` shows the zone then: `UTC` or `+HH:MM` for
    /// a fixed offset, the zone's abbreviation for a named one (`CET` in January, `CEST` in July).
    fn at(&self, unix_secs: i64) -> (i64, String) {
        match self {
            Self::Fixed { offset_minutes: 0 } => (0, "UTC".into()),
            Self::Fixed { offset_minutes } => {
                let sign = if *offset_minutes < 0 { '-' } else { '+' };
                let m = offset_minutes.abs();
                (
                    i64::from(*offset_minutes) * 60,
                    format!("{sign}{:02}:{:02}", m / 60, m % 60),
                )
            }
            Self::Named(zone) => {
                // Out of jiff's range (years -9999..=9999): UTC, as the clock cannot be there anyway.
                let Ok(instant) = jiff::Timestamp::from_second(unix_secs) else {
                    return (0, "UTC".into());
                };
                let info = zone.to_offset_info(instant);
                (i64::from(info.offset().seconds()), info.abbreviation().to_string())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    AmPm,
    Zone,
}

/// A format of `%Y %m %d %H %I %M %S %p %Z %%` and literal text, checked once.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockFormat {
    pieces: Vec<Piece>,
}

impl ClockFormat {
    pub fn parse(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if chars == 0 || chars > MAX_FORMAT_CHARS {
            return Err(format!("must be 1-{MAX_FORMAT_CHARS} characters, got {chars}"));
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text.chars();
        while let Some(c) = rest.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let piece = match rest.next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('Y') => Piece::Year,
                Some('m') => Piece::Month,
                Some('d') => Piece::Day,
                Some('H') => Piece::Hour24,
                Some('I') => Piece::Hour12,
                Some('M') => Piece::Minute,
                Some('S') => Piece::Second,
                Some('p') => Piece::AmPm,
                Some('Z') => Piece::Zone,
                Some(other) => {
                    return Err(format!(
                        "`%{other}` is not supported: use %Y %m %d %H %I %M %S %p %Z or %%"
                    ))
                }
                None => return Err("ends with a lone `%`".into()),
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(piece);
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// The time `unix_secs` (seconds since 1970-01-01 UTC) in `zone`.
    pub fn text(&self, unix_secs: i64, zone: &Zone) -> String {
        let (offset_secs, zone_name) = zone.at(unix_secs);
        let local = unix_secs + offset_secs;
        let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (secs / 3600, secs / 60 % 60, secs % 60);
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Year => out.push_str(&format!("{year:04}")),
                Piece::Month => out.push_str(&format!("{month:02}")),
                Piece::Day => out.push_str(&format!("{day:02}")),
                Piece::Hour24 => out.push_str(&format!("{hour:02}")),
                Piece::Hour12 => out.push_str(&format!("{:02}", (hour + 11) % 12 + 1)),
                Piece::Minute => out.push_str(&format!("{minute:02}")),
                Piece::Second => out.push_str(&format!("{second:02}")),
                Piece::AmPm => out.push_str(if hour < 12 { "AM" } else { "PM" }),
                Piece::Zone => out.push_str(&zone_name),
            }
        }
        out
    }
}

/// Year, month (1-12), day (1-31) of the proleptic Gregorian calendar, `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(format: &str, zone: &str) -> Ticking {
        Ticking::Clock {
            format: ClockFormat::parse(format).unwrap(),
            zone: Zone::parse(zone).unwrap(),
        }
    }

    fn at(unix: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix) + Duration::from_millis(millis)
    }

    fn moment(now: SystemTime) -> Moment {
        Moment { now, live_since: None }
    }

    #[test]
    fn clock_texts_of_known_instants() {
        // 2026-11-30 19:23:01 UTC is 1_796_066_581 (date -u -d @1796066581).
        let evening = at(1_796_066_581, 999);
        assert_eq!(clock("%H:%M:%S", "UTC").text(moment(evening)), "19:23:01");
        assert_eq!(
            clock("%Y-%m-%d %H:%M %Z", "UTC").text(moment(evening)),
            "2026-11-30 19:23 UTC"
        );
        assert_eq!(clock("%I:%M %p", "UTC").text(moment(evening)), "07:23 PM");
        assert_eq!(
            clock("%d/%m %H:%M:%S %Z", "+05:30").text(moment(evening)),
            "01/12 00:53:01 +05:30",
            "an offset moves the date too"
        );
        assert_eq!(clock("%H:%M %Z", "-08:00").text(moment(evening)), "11:23 -08:00");
        // The epoch, midnight (12 AM), a leap day, and 100% literal.
        assert_eq!(
            clock("%Y-%m-%d %H:%M:%S", "UTC").text(moment(at(0, 0))),
            "1970-01-01 00:00:00"
        );
        assert_eq!(clock("%I %p", "UTC").text(moment(at(0, 0))), "12 AM");
        // 2024-02-29 12:00:00 UTC is 1_709_208_000.
        assert_eq!(
            clock("%Y-%m-%d %I%p 100%%", "UTC").text(moment(at(1_709_208_000, 0))),
            "2024-02-29 12PM 100%"
        );
    }

    #[test]
    fn timer_texts_count_whole_seconds_since_live() {
        assert_eq!(timer_text(0), "0:00:00");
        assert_eq!(timer_text(59), "0:00:59");
        assert_eq!(timer_text(3599), "0:59:59");
        assert_eq!(timer_text(3600 * 27 + 61), "27:01:01");
        let live = at(1000, 400);
        let since = |now| Moment {
            now,
            live_since: Some(live),
        };
        assert_eq!(Ticking::SinceLive.text(since(at(1001, 399))), "0:00:00");
        assert_eq!(Ticking::SinceLive.text(since(at(1001, 400))), "0:00:01");
        assert_eq!(Ticking::SinceLive.text(since(at(999, 0))), "0:00:00", "clock set back");
        assert_eq!(Ticking::SinceLive.text(moment(at(5000, 0))), "0:00:00", "not live yet");
    }

    #[test]
    fn the_next_change_is_the_next_whole_second_of_each() {
        let now = at(1_796_066_581, 250);
        assert_eq!(
            clock("%H:%M:%S", "UTC").next_change(moment(now)),
            Some(at(1_796_066_582, 0))
        );
        let live = Moment {
            now,
            live_since: Some(at(1_796_066_500, 700)),
        };
        assert_eq!(Ticking::SinceLive.next_change(live), Some(at(1_796_066_581, 700)));
        assert_eq!(Ticking::SinceLive.next_change(moment(now)), None);
    }

    #[test]
    fn named_zones_apply_their_daylight_saving_at_each_moment() {
        // 2026-01-15 and 2026-07-15 12:00:00 UTC are 1_768_478_400 and 1_784_116_800 (calendar.timegm). Paris is
        // UTC+1 in winter and +2 in summer (EU rule), New York -5 and -4 (US rule).
        let (january, july) = (at(1_768_478_400, 0), at(1_784_116_800, 0));
        for (zone, winter, summer) in [
            ("Europe/Paris", "13:00 CET", "14:00 CEST"),
            ("America/New_York", "07:00 EST", "08:00 EDT"),
            ("america/new_york", "07:00 EST", "08:00 EDT"),
            ("Asia/Kolkata", "17:30 IST", "17:30 IST"),
        ] {
            assert_eq!(
                clock("%H:%M %Z", zone).text(moment(january)),
                winter,
                "{zone} in January"
            );
            assert_eq!(clock("%H:%M %Z", zone).text(moment(july)), summer, "{zone} in July");
        }
        // The EU moves clocks on the last Sunday of March at 01:00 UTC (2026-03-29, 1_774_746_000): the second
        // before is 01:59:59 CET, that second 03:00:00 CEST. The US on its second Sunday at 2:00 local (07:00 UTC,
        // 2026-03-08, 1_772_953_200): 01:59:59 EST, then 03:00:00 EDT.
        let paris = clock("%d %H:%M:%S %Z", "Europe/Paris");
        assert_eq!(paris.text(moment(at(1_774_745_999, 0))), "29 01:59:59 CET");
        assert_eq!(paris.text(moment(at(1_774_746_000, 0))), "29 03:00:00 CEST");
        let new_york = clock("%d %H:%M:%S %Z", "America/New_York");
        assert_eq!(new_york.text(moment(at(1_772_953_199, 0))), "08 01:59:59 EST");
        assert_eq!(new_york.text(moment(at(1_772_953_200, 0))), "08 03:00:00 EDT");
        // A fixed offset stays fixed across the year.
        assert_eq!(clock("%H:%M %Z", "+01:00").text(moment(july)), "13:00 +01:00");
    }

    #[test]
    fn bad_formats_and_zones_say_why() {
        assert!(ClockFormat::parse("%H:%M:%k").unwrap_err().contains("`%k`"));
        assert!(ClockFormat::parse("%H %").unwrap_err().contains("lone"));
        assert!(ClockFormat::parse("").is_err());
        assert!(ClockFormat::parse(&"x".repeat(65)).is_err());
        let long = "Europe/".repeat(20);
        for zone in [
            "Europe/Pariss",
            "Mars/Olympus",
            "",
            &long,
            "+2",
            "+02:60",
            "+15:00",
            "0200",
            "+02:0",
        ] {
            assert!(Zone::parse(zone).unwrap_err().contains("IANA zone name"), "{zone}");
        }
        assert_eq!(Zone::parse("Z"), Ok(Zone::default()));
        assert_eq!(
            Zone::parse("-14:00").map(|z| z.at(0)),
            Ok((-14 * 3600, "-14:00".to_string()))
        );
    }
}
