//! Blocking playlist reload for a low-latency HLS output (RFC 8216bis §6.2.5.2): a request for the playlist
//! with `_HLS_msn=N` (and `_HLS_part=P`) is held until the playlist lists that segment (or part), for at most
//! three target durations, then answered 503; one too far ahead (`_HLS_msn` past the last segment plus two,
//! `_HLS_part` past the Advance Part Limit) is answered 400 at once, and one past the output's held requests
//! (`ll_hls_board::MAX_WAITERS`) 503 with a Retry-After. The preload-hinted part may be asked for before it exists: the
//! request is held likewise until the part is complete (parts are served only whole, never while written).

use super::error::ApiError;
use crate::output::ll_hls_board::{LlHlsBoard, Refusal};

/// Waits, if the request asks for something the output has not listed yet; returns when `file` may be served.
pub async fn hold(board: &LlHlsBoard, dir: &std::path::Path, file: &str, query: Option<&str>) -> Result<(), ApiError> {
    if file == crate::output::hls::PLAYLIST {
        let (msn, part) = blocking_request(query.unwrap_or(""))?;
        let Some(msn) = msn else { return Ok(()) };
        return wait(board, msn, part).await;
    }
    let Some((msn, part)) = crate::output::ll_hls_playlist::parse_part_name(file) else {
        return Ok(());
    };
    let now = board.progress();
    // Only the hinted part, not yet written; anything else missing is a plain 404.
    if (msn, part) == (now.next_msn, now.parts) && !now.ended && !dir.join(file).exists() {
        return wait(board, msn, Some(part)).await;
    }
    Ok(())
}

async fn wait(board: &LlHlsBoard, msn: u64, part: Option<u64>) -> Result<(), ApiError> {
    match board.wait_for(msn, part).await {
        Ok(()) => Ok(()),
        Err(Refusal::SegmentTooFar) => Err(ApiError::bad_request(
            "_HLS_msn",
            "more than two segments past the last one in the playlist",
        )),
        Err(Refusal::PartTooFar) => Err(ApiError::bad_request(
            "_HLS_part",
            "further past the last part in the playlist than three seconds of parts (the Advance Part Limit)",
        )),
        Err(Refusal::Busy) => Err(ApiError::unavailable(
            "as many blocking requests held as this output takes",
            1,
        )),
        Err(Refusal::TimedOut) => Err(ApiError::unavailable(
            "not in the playlist within three target durations",
            1,
        )),
    }
}

/// `_HLS_msn` and `_HLS_part` from a query string (other parameters are ignored, `_HLS_skip` among them: no
/// delta updates are served).
fn blocking_request(query: &str) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let mut msn = None;
    let mut part = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "_HLS_msn" => &mut msn,
            "_HLS_part" => &mut part,
            _ => continue,
        };
        *slot = Some(
            value
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(key, "must be a whole number"))?,
        );
    }
    if part.is_some() && msn.is_none() {
        return Err(ApiError::bad_request("_HLS_part", "needs _HLS_msn"));
    }
    Ok((msn, part))
}

#[cfg(test)]
mod tests {
    use super::blocking_request;

    #[test]
    fn the_query_gives_msn_and_part_and_names_a_bad_one() {
        assert_eq!(blocking_request("").ok(), Some((None, None)));
        assert_eq!(
            blocking_request("_HLS_msn=12&_HLS_part=3").ok(),
            Some((Some(12), Some(3)))
        );
        assert_eq!(blocking_request("_HLS_skip=YES&_HLS_msn=4").ok(), Some((Some(4), None)));
        assert!(blocking_request("_HLS_part=1").is_err());
        assert!(blocking_request("_HLS_msn=x").is_err());
    }
}
