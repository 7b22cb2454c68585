//! Tests fail on a GLib CRITICAL or WARNING (`GStreamer-CRITICAL **: ...`, `GLib-GObject-WARNING **: ...`): such
//! a line is a bug of ours (an element misused, an object unreffed twice) that a user reading the log takes for
//! a crash, and nothing else would notice it.
//!
//! Test code only, shared by the unit tests (`crate::glib_watch`) and the test suite (`support::glib_watch`, the
//! same file by path): in-process tests install a GLib log handler that records those lines, and a `Watch` guard
//! fails the test that sees one; tests of spawned processes scan their stderr with `glib_warnings`.
#![allow(dead_code)]

use gst::glib;
use std::sync::{Mutex, Once};

/// Lines allowed although they are CRITICAL/WARNING: (what the line contains, why its cause lies outside the
/// project). Empty: every such line seen so far had its cause in our code.
const ALLOWED: &[(&str, &str)] = &[];

fn allowed(line: &str) -> bool {
    ALLOWED.iter().any(|(text, _cause)| line.contains(text))
}

/// The lines of `text` (a process's stderr) that GLib prints for a CRITICAL or WARNING: `(prog:pid):
/// Domain-CRITICAL **: ...` or, without a domain, `** (prog:pid): WARNING **: ...`.
pub fn glib_warnings(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| {
            ["CRITICAL **", "WARNING **", "ERROR **"]
                .iter()
                .any(|level| line.contains(level))
                && !allowed(line)
        })
        .collect()
}

/// Every CRITICAL/WARNING logged in this process since `install`, formatted as GLib prints them.
static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Initialises GStreamer and records GLib's CRITICAL and WARNING messages (they are still printed as usual).
pub fn install() {
    static INSTALL: Once = Once::new();
    gst::init().expect("GStreamer");
    INSTALL.call_once(|| {
        glib::log_set_default_handler(|domain, level, message| {
            let name = match level {
                glib::LogLevel::Error => Some("ERROR"),
                glib::LogLevel::Critical => Some("CRITICAL"),
                glib::LogLevel::Warning => Some("WARNING"),
                _ => None,
            };
            if let Some(name) = name {
                let line = format!("{}-{name} **: {message}", domain.unwrap_or("(no domain)"));
                if !allowed(&line) {
                    SEEN.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            }
            glib::log_default_handler(domain, level, Some(message));
        });
    });
}

/// Fails the test (on check, or when dropped) if GLib logged a CRITICAL or WARNING while it was alive. Tests
/// running in parallel share the process: a line is blamed on every test that was running when it came.
pub struct Watch {
    from: usize,
}

/// GStreamer initialised, and a watch from here on.
pub fn watch() -> Watch {
    install();
    Watch {
        from: SEEN.lock().unwrap_or_else(|e| e.into_inner()).len(),
    }
}

/// The domain of the lines this file's own test logs, which must not fail tests running beside it.
const SELF_TEST_DOMAIN: &str = "callcast-glib-watch-test";

impl Watch {
    /// Lines recorded since the watch began.
    fn lines(&self) -> Vec<String> {
        let seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(self.from..).unwrap_or_default().to_vec()
    }

    /// Panics naming every CRITICAL/WARNING line logged since the watch began.
    pub fn check(&self) {
        let new: Vec<String> = self
            .lines()
            .into_iter()
            .filter(|l| !l.starts_with(SELF_TEST_DOMAIN))
            .collect();
        assert!(new.is_empty(), "GLib logged:\n{}", new.join("\n"));
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // A second panic while unwinding would abort the test binary and hide the first one.
        if !std::thread::panicking() {
            self.check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glib_lines_are_found_in_a_log() {
        let log = "2026-01-01T00:00:00Z  INFO broadcast live\n\
                   (callcast:123): GStreamer-CRITICAL **: 20:01:02.345: gst_mini_object_unref: assertion failed\n\
                   2026-01-01T00:00:01Z  WARN output failed, retrying\n\
                   ** (callcast:123): WARNING **: 20:01:03.000: something\n";
        let found = glib_warnings(log);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("GStreamer-CRITICAL"));
        assert!(found[1].contains("WARNING **"));
    }

    #[test]
    fn criticals_and_warnings_are_recorded() {
        let watch = watch();
        glib::g_critical!(
            SELF_TEST_DOMAIN,
            "gst_mini_object_unref: assertion 'mini_object != NULL' failed"
        );
        glib::g_warning!(SELF_TEST_DOMAIN, "a warning");
        glib::g_message!(SELF_TEST_DOMAIN, "a message");
        let mine: Vec<String> = watch
            .lines()
            .into_iter()
            .filter(|l| l.starts_with(SELF_TEST_DOMAIN))
            .collect();
        assert_eq!(
            mine,
            [
                format!(
                    "{SELF_TEST_DOMAIN}-CRITICAL **: gst_mini_object_unref: assertion 'mini_object != NULL' failed"
                ),
                format!("{SELF_TEST_DOMAIN}-WARNING **: a warning"),
            ]
        );
    }
}
