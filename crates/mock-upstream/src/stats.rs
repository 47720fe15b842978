//! Request counters behind `GET /_mock/stats`.
//!
//! The total is a lone atomic; the per-key/scenario/path maps share one mutex
//! that is held only for a few hash lookups and never across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// A point-in-time copy of the mock's counters (the `/_mock/stats` body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Inference requests received.
    pub total: u64,
    /// Inference requests per API key (requests without a key are not listed).
    pub by_key: BTreeMap<String, u64>,
    /// Inference requests per fault scenario id.
    pub by_scenario: BTreeMap<String, u64>,
    /// Inference requests per request path.
    pub by_path: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    total: AtomicU64,
    maps: Mutex<Maps>,
}

#[derive(Debug, Default)]
struct Maps {
    by_key: HashMap<String, u64>,
    by_scenario: HashMap<String, u64>,
    by_path: HashMap<String, u64>,
}

/// Increments `map[key]` (allocating the key only the first time) and returns the new count.
fn bump(map: &mut HashMap<String, u64>, key: &str) -> u64 {
    if let Some(n) = map.get_mut(key) {
        *n += 1;
        *n
    } else {
        map.insert(key.to_owned(), 1);
        1
    }
}

fn to_sorted(map: &HashMap<String, u64>) -> BTreeMap<String, u64> {
    map.iter().map(|(k, v)| (k.clone(), *v)).collect()
}

impl Stats {
    fn maps(&self) -> MutexGuard<'_, Maps> {
        // Counters stay meaningful even if a holder panicked.
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one inference request; returns the scenario's new count, if it named one.
    pub(crate) fn record(
        &self,
        path: &str,
        key: Option<&str>,
        scenario: Option<&str>,
    ) -> Option<u64> {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut maps = self.maps();
        bump(&mut maps.by_path, path);
        if let Some(key) = key {
            bump(&mut maps.by_key, key);
        }
        scenario.map(|id| bump(&mut maps.by_scenario, id))
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn for_key(&self, key: &str) -> u64 {
        self.maps().by_key.get(key).copied().unwrap_or(0)
    }

    pub(crate) fn for_scenario(&self, id: &str) -> u64 {
        self.maps().by_scenario.get(id).copied().unwrap_or(0)
    }

    pub(crate) fn for_path(&self, path: &str) -> u64 {
        self.maps().by_path.get(path).copied().unwrap_or(0)
    }

    pub(crate) fn reset(&self) {
        let mut maps = self.maps();
        self.total.store(0, Ordering::Relaxed);
        maps.by_key.clear();
        maps.by_scenario.clear();
        maps.by_path.clear();
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let maps = self.maps();
        StatsSnapshot {
            total: self.total(),
            by_key: to_sorted(&maps.by_key),
            by_scenario: to_sorted(&maps.by_scenario),
            by_path: to_sorted(&maps.by_path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let stats = Stats::default();
        assert_eq!(stats.record("/v1/x", Some("k1"), Some("s")), Some(1));
        assert_eq!(stats.record("/v1/x", Some("k1"), Some("s")), Some(2));
        assert_eq!(stats.record("/x", None, None), None);
        assert_eq!(stats.total(), 3);
        assert_eq!(stats.for_key("k1"), 2);
        assert_eq!(stats.for_scenario("s"), 2);
        assert_eq!(stats.for_path("/v1/x"), 2);
        let snap = stats.snapshot();
        assert_eq!(snap.by_path.get("/x"), Some(&1));
        stats.reset();
        assert_eq!(stats.total(), 0);
        assert_eq!(stats.for_key("k1"), 0);
        assert_eq!(stats.record("/x", None, Some("s")), Some(1));
    }
}
