//! Fusing the BM25 and embedding rankings.

use std::collections::HashMap;

/// Two rankings fused by a convex combination of their normalised scores:
/// `bm25_weight × bm25 / best bm25 + (1 − bm25_weight) × (cosine − lowest) /
/// (highest − lowest)`, best first. BM25 scores are divided by the best one
/// (0 is no match); cosine similarities are spread over the dense
/// candidates' range, since unrelated texts are rarely near 0. A key
/// missing from one list scores 0 there; a key listed twice counts its best
/// score. Unlike reciprocal-rank fusion, how far ahead a first hit is counts,
/// so a ranking that is sure is not outvoted by one that barely prefers
/// another key.
pub fn combine<K: Clone + Eq + std::hash::Hash>(
    bm25: &[(K, f32)],
    dense: &[(K, f32)],
    bm25_weight: f32,
) -> Vec<(K, f32)> {
    let finite = |list: &[(K, f32)]| -> Vec<(K, f32)> {
        list.iter()
            .filter(|(_, s)| s.is_finite())
            .cloned()
            .collect()
    };
    let (bm25, dense) = (finite(bm25), finite(dense));
    let best = bm25.iter().map(|(_, s)| *s).fold(0.0, f32::max);
    let high = dense.iter().map(|(_, s)| *s).fold(f32::MIN, f32::max);
    let low = dense.iter().map(|(_, s)| *s).fold(f32::MAX, f32::min);
    let weight = if bm25_weight.is_finite() {
        bm25_weight.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let spread = high - low;
    let normal_bm25 = |s: f32| if best > 0.0 { s.max(0.0) / best } else { 0.0 };
    let normal_dense = |s: f32| {
        if spread > f32::EPSILON {
            (s - low) / spread
        } else {
            1.0
        }
    };
    let sides: [Vec<(&K, f32)>; 2] = [
        bm25.iter().map(|(k, s)| (k, normal_bm25(*s))).collect(),
        dense.iter().map(|(k, s)| (k, normal_dense(*s))).collect(),
    ];
    // Each key's best normalised score on each side, in first-seen order.
    let mut order: Vec<K> = Vec::new();
    let mut parts: HashMap<K, [f32; 2]> = HashMap::new();
    for (side, list) in sides.into_iter().enumerate() {
        for (key, normal) in list {
            let e = parts.entry(key.clone()).or_insert_with(|| {
                order.push(key.clone());
                [0.0; 2]
            });
            e[side] = e[side].max(normal);
        }
    }
    let mut fused: Vec<(K, f32)> = order
        .into_iter()
        .map(|key| {
            let [b, d] = parts[&key];
            (key, weight * b + (1.0 - weight) * d)
        })
        .collect();
    // Stable: ties keep BM25's order.
    fused.sort_by(|a, b| b.1.total_cmp(&a.1));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(fused: Vec<(&'static str, f32)>) -> Vec<&'static str> {
        fused.into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_sure_ranking_outweighs_one_that_barely_prefers_another_key() {
        // BM25 is sure of "a"; the embeddings put "c" first by a hair.
        let bm25 = [("a", 20.0), ("b", 6.0), ("c", 5.0)];
        let dense = [("c", 0.62), ("a", 0.61), ("d", 0.30)];
        assert_eq!(keys(combine(&bm25, &dense, 0.5)), ["a", "c", "b", "d"]);
        // And the other way round: BM25 barely prefers "b", the embeddings
        // are sure of "c".
        let bm25 = [("b", 10.0), ("c", 9.8), ("a", 2.0)];
        let dense = [("c", 0.80), ("b", 0.40), ("d", 0.38)];
        assert_eq!(keys(combine(&bm25, &dense, 0.5))[0], "c");
    }

    #[test]
    fn the_weight_picks_one_ranking_at_its_ends() {
        let bm25 = [("a", 3.0), ("b", 2.0)];
        let dense = [("b", 0.9), ("a", 0.1)];
        assert_eq!(keys(combine(&bm25, &dense, 1.0)), ["a", "b"]);
        assert_eq!(keys(combine(&bm25, &dense, 0.0)), ["b", "a"]);
        // One list empty: the other's order.
        assert_eq!(keys(combine(&bm25, &[], 0.5)), ["a", "b"]);
        assert_eq!(keys(combine(&[], &dense, 0.5)), ["b", "a"]);
    }

    proptest::proptest! {
        #[test]
        fn combined_scores_are_bounded_and_each_key_is_listed_once(
            bm25 in proptest::collection::vec((0u8..20, proptest::num::f32::ANY), 0..30),
            dense in proptest::collection::vec((0u8..20, proptest::num::f32::ANY), 0..30),
            weight in proptest::num::f32::ANY,
        ) {
            let fused = combine(&bm25, &dense, weight);
            let mut seen = std::collections::HashSet::new();
            for (key, score) in &fused {
                proptest::prop_assert!(seen.insert(*key));
                proptest::prop_assert!((0.0..=1.0 + 1e-5).contains(score), "{score}");
            }
            proptest::prop_assert!(fused.windows(2).all(|w| w[0].1 >= w[1].1));
            // A key at the top of both lists scores at least as much as any.
            let top = |list: &[(u8, f32)]| {
                list.iter()
                    .filter(|(_, s)| s.is_finite())
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .copied()
            };
            if let (Some(b), Some(d)) = (top(&bm25), top(&dense))
                && b.0 == d.0
                && b.1 > 0.0
            {
                let own = fused.iter().find(|(k, _)| *k == b.0).map(|(_, s)| *s).unwrap_or(0.0);
                proptest::prop_assert!(fused.iter().all(|(_, s)| *s <= own + 1e-5));
            }
        }
    }
}
