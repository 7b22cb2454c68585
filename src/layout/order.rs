//! Who is on screen and in what order: join order, an operator's fixed order, recent speakers first, hidden
//! participants and the tile limit.

/// Default limit of participants on screen.
pub const DEFAULT_MAX_TILES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRules {
    /// These first, in this order (ids not present are skipped); everyone else follows.
    pub fixed: Vec<String>,
    /// Among the others, recent speakers first (most recent first).
    pub sort_active: bool,
    /// Never on screen (still heard).
    pub hide: Vec<String>,
    pub max_tiles: usize,
}

impl Default for OrderRules {
    fn default() -> Self {
        Self {
            fixed: Vec::new(),
            sort_active: false,
            hide: Vec::new(),
            max_tiles: DEFAULT_MAX_TILES,
        }
    }
}

/// On-screen order from participants in join order and speakers from most to least recent.
pub fn visible_order(joined: &[String], recent_speakers: &[String], rules: &OrderRules) -> Vec<String> {
    let shown = |id: &&String| !rules.hide.contains(id);
    let mut order: Vec<String> = rules.fixed.iter().filter(|id| joined.contains(id)).cloned().collect();
    let mut rest: Vec<String> = joined.iter().filter(|id| !order.contains(id)).cloned().collect();
    if rules.sort_active {
        let rank = |id: &String| recent_speakers.iter().position(|s| s == id).unwrap_or(usize::MAX);
        rest.sort_by_key(rank);
    }
    order.extend(rest);
    order.iter().filter(shown).take(rules.max_tiles).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn join_order_by_default() {
        assert_eq!(
            visible_order(&ids(&["a", "b", "c"]), &[], &OrderRules::default()),
            ids(&["a", "b", "c"])
        );
    }

    #[test]
    fn fixed_then_others_sorted_by_speaking_then_hidden_and_limited() {
        let rules = OrderRules {
            fixed: ids(&["c", "zz"]),
            sort_active: true,
            hide: ids(&["d"]),
            max_tiles: 3,
        };
        let joined = ids(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            visible_order(&joined, &ids(&["e", "d", "b"]), &rules),
            ids(&["c", "e", "b"])
        );
    }
}
