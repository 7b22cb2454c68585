//! Identifiers we hand out: a short prefix naming the kind, then random lowercase hex.

use rand::Rng;

pub fn new_id(prefix: &str) -> String {
    let n: u64 = rand::rng().random();
    format!("{prefix}_{n:016x}")
}

/// True for strings `new_id` could have produced; anything else (paths, odd characters) is rejected early.
pub fn is_valid_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_paths() {
        let id = new_id("bc");
        assert!(is_valid_id("bc", &id), "{id}");
        assert!(!is_valid_id("bc", "../etc"));
        assert!(!is_valid_id("bc", "bc_0123"));
        assert!(!is_valid_id("p", &id));
    }
}
