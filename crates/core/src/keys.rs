//! Weighted random key choice among the keys that allow the model.

use crate::config::ResolvedKey;

/// Picks a key for `model`: only keys whose `models` list allows it (empty = all), chosen at
/// random in proportion to `weight` (Bifrost's rule, with weights compared as floats).
/// `None` when no key allows the model.
pub fn select_key<'a>(keys: &'a [ResolvedKey], model: &str) -> Option<&'a ResolvedKey> {
    select_key_except(keys, model, None)
}

/// [`select_key`] leaving out `avoid` (the key that was just rate limited) when another key
/// allows the model.
pub fn select_key_except<'a>(
    keys: &'a [ResolvedKey],
    model: &str,
    avoid: Option<&ResolvedKey>,
) -> Option<&'a ResolvedKey> {
    select_with(keys, model, avoid, fastrand::f64())
}

/// [`select_key_except`] with the random draw `r` in `[0, 1)` given, for tests.
fn select_with<'a>(
    keys: &'a [ResolvedKey],
    model: &str,
    avoid: Option<&ResolvedKey>,
    r: f64,
) -> Option<&'a ResolvedKey> {
    let allowed = keys.iter().filter(move |k| k.allows(model));
    if let Some(a) = avoid {
        let rest = allowed.clone().filter(move |k| !std::ptr::eq(a, *k));
        if rest.clone().next().is_some() {
            return pick(rest, r);
        }
    }
    pick(allowed, r)
}

/// A weighted random choice among `keys` (uniform when every weight is zero).
fn pick<'a>(
    keys: impl Iterator<Item = &'a ResolvedKey> + Clone,
    r: f64,
) -> Option<&'a ResolvedKey> {
    let mut total = 0.0;
    let mut count = 0usize;
    let mut only = None;
    for k in keys.clone() {
        total += k.weight;
        count += 1;
        only = Some(k);
    }
    if count <= 1 {
        return only;
    }
    if total <= 0.0 {
        // All weights zero: fall back to uniform choice.
        let idx = ((r * count as f64) as usize).min(count - 1);
        return keys.clone().nth(idx);
    }
    let mut target = r * total;
    let mut last = None;
    for k in keys {
        if target < k.weight {
            return Some(k);
        }
        target -= k.weight;
        last = Some(k);
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, weight: f64, models: &[&str]) -> ResolvedKey {
        ResolvedKey {
            id: id.into(),
            value: format!("sk-{id}"),
            models: models.iter().map(|s| s.to_string()).collect(),
            weight,
            provider_config: Default::default(),
        }
    }

    #[test]
    fn distribution_follows_weights_within_tolerance() {
        let keys = vec![key("a", 0.7, &[]), key("b", 0.2, &[]), key("c", 0.1, &[])];
        let mut counts = [0u32; 3];
        let n = 100_000;
        for _ in 0..n {
            let k = select_key(&keys, "m").unwrap();
            counts[(k.id.as_bytes()[0] - b'a') as usize] += 1;
        }
        for (i, expect) in [0.7, 0.2, 0.1].iter().enumerate() {
            let got = f64::from(counts[i]) / f64::from(n);
            assert!((got - expect).abs() < 0.01, "key {i}: {got} vs {expect}");
        }
    }

    #[test]
    fn model_filter_and_edges() {
        let keys = vec![
            key("a", 1.0, &["gpt-4o"]),
            key("b", 1.0, &["other"]),
            key("c", 0.0, &[]),
        ];
        assert_eq!(
            select_with(&keys, "gpt-4o", None, 0.99)
                .unwrap()
                .id
                .as_ref(),
            "a"
        );
        assert_eq!(
            select_with(&keys, "other", None, 0.0).unwrap().id.as_ref(),
            "b"
        );
        assert_eq!(
            select_with(&keys, "nothing", None, 0.5)
                .unwrap()
                .id
                .as_ref(),
            "c"
        );
        let restricted = vec![key("a", 1.0, &["x"])];
        assert!(select_key(&restricted, "y").is_none());
        let zero = vec![key("a", 0.0, &[]), key("b", 0.0, &[])];
        assert_eq!(
            select_with(&zero, "m", None, 0.75).unwrap().id.as_ref(),
            "b"
        );
        assert_eq!(
            select_with(&keys, "gpt-4o", None, 0.999_999)
                .unwrap()
                .id
                .as_ref(),
            "a"
        );
    }

    #[test]
    fn a_rate_limited_key_is_avoided_while_another_serves_the_model() {
        let keys = vec![
            key("a", 1.0, &[]),
            key("b", 1.0, &["m"]),
            key("c", 1.0, &["x"]),
        ];
        for r in [0.0, 0.5, 0.99] {
            assert_eq!(
                select_with(&keys, "m", Some(&keys[0]), r)
                    .unwrap()
                    .id
                    .as_ref(),
                "b"
            );
            // No other key serves `y`: the avoided one is still used.
            assert_eq!(
                select_with(&keys, "y", Some(&keys[0]), r)
                    .unwrap()
                    .id
                    .as_ref(),
                "a"
            );
        }
    }

    #[test]
    fn azure_deployments_restrict_the_models_a_key_serves() {
        let mut east = key("east", 1.0, &[]);
        east.provider_config.insert(
            "azure_key_config".into(),
            serde_json::json!({"endpoint": "https://e", "deployments": {"gpt-4o": "dep-4o"}}),
        );
        let mut west = key("west", 1.0, &[]);
        west.provider_config.insert(
            "azure_key_config".into(),
            serde_json::json!({"endpoint": "https://w", "deployments": {}}),
        );
        let keys = vec![east, west];
        // Only `west` (no deployments map) can serve a model `east` does not deploy.
        for r in [0.0, 0.99] {
            assert_eq!(
                select_with(&keys, "gpt-35", None, r).unwrap().id.as_ref(),
                "west"
            );
        }
        assert_eq!(keys[0].deployment("gpt-4o"), Some(Some("dep-4o")));
        assert_eq!(keys[0].deployment("gpt-35"), None);
        assert_eq!(keys[1].deployment("gpt-35"), Some(None));
        assert!(select_key(&keys[..1], "gpt-35").is_none());
    }
}
