//! The GStreamer objects alive in a server, counted by GStreamer's own leaks tracer (not by callcast): what a
//! test reads to know how many elements of a kind exist, e.g. decoders.

use super::wait_for;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Environment for a server whose leaks tracer lists the GStreamer objects (pads, elements, buses; not buffers)
/// alive on SIGUSR1, into `gst_log`.
pub fn tracer_env(gst_log: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GST_TRACERS", "leaks(filters=GstObject)".into()),
        ("GST_LEAKS_TRACER_SIG", "1".into()),
        ("GST_DEBUG", "GST_TRACER:7".into()),
        ("GST_DEBUG_NO_COLOR", "1".into()),
        ("GST_DEBUG_FILE", gst_log.to_string_lossy().into_owned()),
    ]
}

/// GStreamer objects alive in process `pid` now, by type name (`GstVP8Dec`, `GstPad`, ...): SIGUSR1 makes the
/// leaks tracer list them in `gst_log`.
pub fn alive_objects(pid: &str, gst_log: &Path) -> BTreeMap<String, i64> {
    let from = std::fs::metadata(gst_log).map_or(0, |m| m.len() as usize);
    let signalled = std::process::Command::new("kill")
        .args(["-USR1", pid])
        .status()
        .expect("kill");
    assert!(signalled.success(), "kill -USR1 {pid}");
    let mut last_len = 0;
    wait_for("the leaks tracer's list", Duration::from_secs(10), || {
        let text = std::fs::read(gst_log).ok()?;
        let new = String::from_utf8_lossy(text.get(from..)?).into_owned();
        // Complete once it stopped growing.
        let done = new.contains("object-alive, ") && new.len() == last_len;
        last_len = new.len();
        done.then(|| {
            let mut count = BTreeMap::new();
            for line in new.lines().filter(|l| l.contains("object-alive, ")) {
                if let Some(kind) = line
                    .split("type-name=(string)")
                    .nth(1)
                    .and_then(|t| t.split(',').next())
                {
                    *count.entry(kind.to_string()).or_insert(0) += 1;
                }
            }
            count
        })
    })
}
