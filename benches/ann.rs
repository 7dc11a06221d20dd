//! Dense-search figures (no assertions): `cargo bench --bench ann`.
//!
//! For 10,000 and 100,000 synthetic unit vectors of 384 dimensions (the
//! size of MiniLM's), clustered around 1,000 centres as passage embeddings
//! are, and uniform on the sphere (the hard case): the time to build the
//! index, search latency p50/p99 over 1,000 queries for the top 10, and
//! recall@10 against the exact scan; the exact scan's latency beside it.
//! `BENCH_ANN_SIZES` (comma-separated) and `BENCH_ANN_EF` (ef_search)
//! change the sizes and the search width.

use std::time::{Duration, Instant};

use switchboard::assistant::ann::{self, Index, Params};

const DIM: usize = 384;
const QUERIES: usize = 1000;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn timed(index: &Index, queries: &[std::sync::Arc<[f32]>], exact: bool) -> (String, String) {
    let mut samples = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let found = if exact {
            index.scan(q, 10)
        } else {
            index.search(q, 10)
        };
        std::hint::black_box(found);
        samples.push(t.elapsed());
    }
    (
        ms(percentile(&mut samples, 0.5)),
        ms(percentile(&mut samples, 0.99)),
    )
}

fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_ANN_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000]);
    let mut params = Params::default();
    if let Some(ef) = std::env::var("BENCH_ANN_EF")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        params.ef_search = ef;
    }
    println!(
        "threads: {}  params: {params:?}  exact below {}",
        rayon::current_num_threads(),
        ann::EXACT_BELOW
    );
    {
        // The dot product, where nearly all the time goes.
        let v = ann::random_unit_vectors(1000, DIM, 0, 7);
        for (name, f) in [
            (
                "portable (8 lanes, baseline SSE2)",
                ann::dot_portable as fn(&[f32], &[f32]) -> f32,
            ),
            ("as run here", ann::dot),
        ] {
            let started = Instant::now();
            let mut sum = 0f32;
            for _ in 0..10 {
                for a in &v {
                    for b in v.iter().take(100) {
                        sum += f(a, b);
                    }
                }
            }
            std::hint::black_box(sum);
            println!(
                "dot product, {DIM}-d, {name}: {:.1} ns",
                started.elapsed().as_secs_f64() * 1e9 / 1_000_000.0
            );
        }
    }
    for (name, clusters) in [("clustered", 1000), ("uniform", 0)] {
        for &n in &sizes {
            let vectors = ann::random_unit_vectors(n, DIM, clusters, 11);
            let queries = ann::random_unit_vectors(QUERIES, DIM, clusters, 12);
            let started = Instant::now();
            let index = Index::graph(vectors.clone(), params);
            let build = started.elapsed();
            let (p50, p99) = timed(&index, &queries, false);
            let (e50, e99) = timed(&index, &queries, true);
            let recall = ann::recall(&index, &queries, 10);
            println!(
                "{name} {n}: build {:.1} s  hnsw p50 {p50} p99 {p99}  recall@10 {recall:.4}  exact p50 {e50} p99 {e99}",
                build.as_secs_f64()
            );
            // An edit of 1% of the passages while running: as many removed
            // as added, the graph updated in place.
            let changed = n / 100;
            let mut kept = vectors;
            kept.drain(..changed);
            let mut previous: Vec<Option<usize>> = (changed..n).map(Some).collect();
            kept.extend(ann::random_unit_vectors(changed, DIM, clusters, 13));
            previous.extend((0..changed).map(|_| None));
            let started = Instant::now();
            let updated = index.updated(kept, &previous);
            let update = started.elapsed();
            let recall = ann::recall(&updated, &queries, 10);
            println!(
                "{name} {n}: update of {changed} removed + {changed} added {:.2} s  recall@10 {recall:.4}  waypoints {}",
                update.as_secs_f64(),
                updated.waypoints()
            );
        }
    }
}
