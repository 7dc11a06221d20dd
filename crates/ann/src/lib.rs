//! Nearest-neighbour search over unit vectors for dense retrieval: an
//! exact scan below [`EXACT_BELOW`] vectors, a hierarchical navigable
//! small-world graph (HNSW, Malkov & Yashunin 2016) at and above it.
//!
//! The graph is built in one go from the vectors (in parallel, batch by
//! batch: each batch of new points searches the graph as it was before the
//! batch, then the links are written). When passages change it is updated:
//! new vectors are inserted the same way and the nodes of removed ones stay
//! as waypoints, never returned, until they would be a quarter of the graph
//! and it is built afresh;
//! `cargo bench --bench ann` measures build time, latency and recall
//! against the exact scan (figures in the README).
//!
//! A crate of its own (Switchboard's `assistant::ann`) so that it can be
//! optimised in debug builds and tests, where building graphs of thousands
//! of vectors unoptimised took most of the unit tests' time; it depends on
//! nothing of Switchboard's.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rayon::prelude::*;

/// Below this many vectors the exact scan is used: it is as fast as the
/// graph there (under a millisecond) and needs no build.
pub const EXACT_BELOW: usize = 10_000;

/// Whether an index of `n` vectors is searched through a graph.
pub fn uses_graph(n: usize) -> bool {
    n >= EXACT_BELOW
}

/// Graph parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Links per node on the upper layers (twice this on layer 0).
    pub m: usize,
    /// Candidates kept while inserting.
    pub ef_construction: usize,
    /// Candidates kept while searching (at least the number asked for).
    pub ef_search: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 100,
            ef_search: 96,
        }
    }
}

/// The vectors of the current passages and what searches them.
///
/// Vectors are held by node. A fresh index has one node per passage in
/// passage order; an index [updated](Index::updated) for changed passages
/// keeps the nodes of passages that are gone as waypoints of the graph and
/// appends nodes for new ones, so `positions` maps each node to its
/// passage's position now ([`REMOVED`] for a waypoint).
#[derive(Default, Clone)]
pub struct Index {
    vectors: Vec<Arc<[f32]>>,
    graph: Option<Graph>,
    positions: Vec<u32>,
}

/// The position of a node whose passage is gone.
const REMOVED: u32 = u32::MAX;

/// Waypoints (nodes of passages that are gone) a graph may keep, as a share
/// of its nodes, before an update builds it afresh.
const MAX_WAYPOINTS: f64 = 0.25;

fn identity(n: usize) -> Vec<u32> {
    (0..n as u32).collect()
}

impl Index {
    /// An index over `vectors` (unit vectors of one dimension): exact below
    /// [`EXACT_BELOW`], a graph with the default [`Params`] above.
    pub fn build(vectors: Vec<Arc<[f32]>>) -> Self {
        Self::build_from(vectors, EXACT_BELOW)
    }

    /// An index over `vectors`: exact below `exact_below` vectors, a graph
    /// with the default [`Params`] from there on.
    pub fn build_from(vectors: Vec<Arc<[f32]>>, exact_below: usize) -> Self {
        if vectors.len() < exact_below {
            Self::exact(vectors)
        } else {
            Self::graph(vectors, Params::default())
        }
    }

    /// An index that always scans every vector.
    pub fn exact(vectors: Vec<Arc<[f32]>>) -> Self {
        Self {
            positions: identity(vectors.len()),
            vectors,
            graph: None,
        }
    }

    /// An index searching a graph built with `params`, whatever the size.
    pub fn graph(vectors: Vec<Arc<[f32]>>, params: Params) -> Self {
        let graph = (!vectors.is_empty()).then(|| Graph::build(&vectors, params));
        Self {
            positions: identity(vectors.len()),
            vectors,
            graph,
        }
    }

    /// The index over `vectors` (the passages now, in order) made from this
    /// one without building the graph again: `previous[i]` is the position
    /// the `i`-th vector had in this index, `None` for a new one. Nodes of
    /// passages that are gone stay in the graph as waypoints (never
    /// returned) and new vectors are inserted, so a change of a few
    /// passages costs a few insertions. Built afresh instead when the index
    /// has no graph, the new one should not have one (see [`uses_graph`]),
    /// or waypoints would pass a quarter of the nodes.
    pub fn updated(self, vectors: Vec<Arc<[f32]>>, previous: &[Option<usize>]) -> Self {
        self.updated_from(vectors, previous, EXACT_BELOW)
    }

    /// [`Index::updated`], with a graph kept from `exact_below` vectors.
    pub fn updated_from(
        self,
        vectors: Vec<Arc<[f32]>>,
        previous: &[Option<usize>],
        exact_below: usize,
    ) -> Self {
        let Some(mut graph) = self.graph else {
            return Self::build(vectors);
        };
        if vectors.len() < exact_below.max(1) || previous.len() != vectors.len() {
            return Self::build(vectors);
        }
        let mut node_of = vec![None; self.positions.len()];
        for (node, &p) in self.positions.iter().enumerate() {
            if p != REMOVED {
                node_of[p as usize] = Some(node);
            }
        }
        let mut positions = vec![REMOVED; self.vectors.len()];
        let mut new = Vec::new();
        for (i, prev) in previous.iter().enumerate() {
            match prev.and_then(|p| node_of.get(p).copied().flatten()) {
                // A node taken twice (a duplicated previous position)
                // would lose a passage: the second is a new node.
                Some(node) if positions[node] == REMOVED => positions[node] = i as u32,
                _ => new.push(i),
            }
        }
        let nodes = self.vectors.len() + new.len();
        let waypoints = nodes - vectors.len();
        if waypoints as f64 > MAX_WAYPOINTS * nodes as f64 {
            return Self::build(vectors);
        }
        let mut all = self.vectors;
        let first = all.len();
        for &i in &new {
            all.push(vectors[i].clone());
            positions.push(i as u32);
        }
        graph.insert(&all, first);
        Self {
            vectors: all,
            graph: Some(graph),
            positions,
        }
    }

    /// Passages held (not counting waypoints).
    pub fn len(&self) -> usize {
        self.positions.iter().filter(|&&p| p != REMOVED).count()
    }

    /// Whether there is no passage.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nodes of passages that are gone, kept as waypoints of the graph.
    pub fn waypoints(&self) -> usize {
        self.vectors.len() - self.len()
    }

    /// Whether searches scan every vector.
    pub fn is_exact(&self) -> bool {
        self.graph.is_none()
    }

    /// The `limit` vectors most similar to `query` (by dot product), as
    /// (similarity, position), most similar first.
    pub fn search(&self, query: &[f32], limit: usize) -> Vec<(f32, usize)> {
        match &self.graph {
            Some(graph) => graph
                .search(&self.vectors, query, limit)
                .into_iter()
                .filter_map(|(s, node)| {
                    let p = self.positions[node];
                    (p != REMOVED).then_some((s, p as usize))
                })
                .take(limit)
                .collect(),
            None => self.scan(query, limit),
        }
    }

    /// The exact answer, whatever the index: every vector scored.
    pub fn scan(&self, query: &[f32], limit: usize) -> Vec<(f32, usize)> {
        let mut scored: Vec<(f32, usize)> = self
            .vectors
            .iter()
            .zip(&self.positions)
            .filter(|(_, p)| **p != REMOVED)
            .map(|(v, p)| (dot(query, v), *p as usize))
            .collect();
        if scored.len() > limit && limit > 0 {
            scored.select_nth_unstable_by(limit - 1, |a, b| b.0.total_cmp(&a.0));
        }
        scored.truncate(limit);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
    }
}

/// A candidate: similarity to the point searched for, and the node.
#[derive(Clone, Copy, PartialEq)]
struct Near(f32, u32);

impl Eq for Near {}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Clone)]
struct Graph {
    params: Params,
    /// For each node, its links on each layer it is on (layer 0 first).
    links: Vec<Vec<Vec<u32>>>,
    entry: u32,
    top: usize,
}

/// Highest layer a point is drawn on (see [`levels`]).
const MAX_LEVEL: usize = 16;

/// Points inserted one by one before batches start.
const SEED: usize = 256;

impl Graph {
    fn build(vectors: &[Arc<[f32]>], params: Params) -> Self {
        let levels = levels(1, params.m);
        let mut graph = Graph {
            params,
            links: vec![vec![Vec::new(); levels[0] + 1]],
            entry: 0,
            top: levels[0],
        };
        graph.insert(vectors, 1);
        graph
    }

    /// Inserts the nodes `first..` of `vectors` (the graph holds the ones
    /// before).
    fn insert(&mut self, vectors: &[Arc<[f32]>], first: usize) {
        let levels = levels(vectors.len(), self.params.m);
        let mut start = first;
        while start < vectors.len() {
            // Batches grow with the graph (a batch is a few percent of it),
            // so most points see a graph nearly as large as the final one.
            let size = if start < SEED { 1 } else { (start / 32).max(1) };
            let end = (start + size).min(vectors.len());
            self.insert_batch(vectors, &levels, start..end);
            start = end;
        }
    }

    fn insert_batch(
        &mut self,
        vectors: &[Arc<[f32]>],
        levels: &[usize],
        batch: std::ops::Range<usize>,
    ) {
        let ef = self.params.ef_construction;
        // 1. Each new point's neighbours in the graph as it is.
        let found: Vec<Vec<Vec<u32>>> = batch
            .clone()
            .into_par_iter()
            .map(|p| {
                let q = &vectors[p];
                let level = levels[p];
                let mut entry = vec![Near(dot(q, &vectors[self.entry as usize]), self.entry)];
                for layer in (level + 1..=self.top).rev() {
                    entry = self.layer(vectors, q, &entry, 1, layer);
                }
                let mut mine = vec![Vec::new(); level + 1];
                for layer in (0..=level.min(self.top)).rev() {
                    let candidates = self.layer(vectors, q, &entry, ef, layer);
                    mine[layer] = select(vectors, &candidates, self.max_links(layer));
                    entry = candidates;
                }
                mine
            })
            .collect();
        // 2. Back-links, grouped by the node that receives them.
        let mut incoming: std::collections::HashMap<(u32, usize), Vec<u32>> =
            std::collections::HashMap::new();
        for (p, mine) in batch.clone().zip(&found) {
            for (layer, neighbours) in mine.iter().enumerate() {
                for &n in neighbours {
                    incoming.entry((n, layer)).or_default().push(p as u32);
                }
            }
        }
        let incoming: Vec<((u32, usize), Vec<u32>)> = incoming.into_iter().collect();
        let updated: Vec<((u32, usize), Vec<u32>)> = incoming
            .into_par_iter()
            .map(|((n, layer), new)| {
                let mut all = self.links[n as usize][layer].clone();
                all.extend(new);
                let max = self.max_links(layer);
                if all.len() > max {
                    let v = &vectors[n as usize];
                    let mut scored: Vec<Near> = all
                        .iter()
                        .map(|&o| Near(dot(v, &vectors[o as usize]), o))
                        .collect();
                    scored.sort_by(|a, b| b.cmp(a));
                    all = select(vectors, &scored, max);
                }
                ((n, layer), all)
            })
            .collect();
        self.links.extend(found);
        for ((n, layer), list) in updated {
            self.links[n as usize][layer] = list;
        }
        for p in batch {
            if levels[p] > self.top {
                self.top = levels[p];
                self.entry = p as u32;
            }
        }
    }

    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            self.params.m * 2
        } else {
            self.params.m
        }
    }

    fn search(&self, vectors: &[Arc<[f32]>], query: &[f32], limit: usize) -> Vec<(f32, usize)> {
        let mut entry = vec![Near(dot(query, &vectors[self.entry as usize]), self.entry)];
        for layer in (1..=self.top).rev() {
            entry = self.layer(vectors, query, &entry, 1, layer);
        }
        // All `ef` found, best first: the caller drops waypoints, then
        // takes `limit`.
        let found = self.layer(vectors, query, &entry, self.params.ef_search.max(limit), 0);
        found
            .into_iter()
            .map(|Near(s, n)| (s, n as usize))
            .collect()
    }

    /// Best-first search of one layer from `entry`, keeping `ef`
    /// candidates; the result is most similar first.
    fn layer(
        &self,
        vectors: &[Arc<[f32]>],
        query: &[f32],
        entry: &[Near],
        ef: usize,
        layer: usize,
    ) -> Vec<Near> {
        let mut visited = Visited::new(vectors.len());
        // Candidates to expand, most similar on top.
        let mut frontier: BinaryHeap<Near> = BinaryHeap::new();
        // The best `ef` so far, least similar on top.
        let mut best: BinaryHeap<std::cmp::Reverse<Near>> = BinaryHeap::new();
        for &e in entry {
            if visited.insert(e.1) {
                frontier.push(e);
                best.push(std::cmp::Reverse(e));
            }
        }
        while best.len() > ef {
            best.pop();
        }
        while let Some(c) = frontier.pop() {
            let worst = best.peek().map_or(f32::NEG_INFINITY, |w| w.0.0);
            if c.0 < worst && best.len() >= ef {
                break;
            }
            let Some(links) = self.links[c.1 as usize].get(layer) else {
                continue;
            };
            for &n in links {
                if !visited.insert(n) {
                    continue;
                }
                let s = dot(query, &vectors[n as usize]);
                let worst = best.peek().map_or(f32::NEG_INFINITY, |w| w.0.0);
                if best.len() < ef || s > worst {
                    frontier.push(Near(s, n));
                    best.push(std::cmp::Reverse(Near(s, n)));
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = best.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }
}

/// The neighbour-selection heuristic (the paper's algorithm 4): from
/// `candidates` (most similar first) keep one only if it is closer to the
/// point than to any kept one, so links spread in several directions;
/// fill up with the closest of the rest.
fn select(vectors: &[Arc<[f32]>], candidates: &[Near], max: usize) -> Vec<u32> {
    let mut kept: Vec<u32> = Vec::with_capacity(max);
    let mut rest: Vec<u32> = Vec::new();
    for &Near(s, c) in candidates {
        if kept.len() == max {
            break;
        }
        let v = &vectors[c as usize];
        if kept.iter().all(|&k| dot(v, &vectors[k as usize]) < s) {
            kept.push(c);
        } else {
            rest.push(c);
        }
    }
    let room = max - kept.len();
    kept.extend(rest.into_iter().take(room));
    kept
}

/// Each point's top layer, drawn with the paper's distribution
/// (`⌊-ln U / ln m⌋`) from a fixed seed, so a build is reproducible.
fn levels(n: usize, m: usize) -> Vec<usize> {
    let ml = 1.0 / (m.max(2) as f64).ln();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
            let u = ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
            ((-u.ln() * ml) as usize).min(MAX_LEVEL)
        })
        .collect()
}

/// Nodes seen in one search, a bit each.
struct Visited(Vec<u64>);

impl Visited {
    fn new(n: usize) -> Self {
        Self(vec![0; n.div_ceil(64)])
    }

    /// Marks `n`; whether it was not marked before.
    fn insert(&mut self, n: u32) -> bool {
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        let new = self.0[word] & bit == 0;
        self.0[word] |= bit;
        new
    }
}

/// Dot product. Nearly all the time of building and searching the graph
/// is spent here, so on x86-64 processors with AVX2 and FMA (checked once,
/// at run time) it runs compiled for them: twice the lanes of the baseline
/// SSE2 build and a fused multiply-add. Inlinable into callers in other
/// crates (Switchboard's retrieval), now that the index is a crate.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has both features (checked just above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

/// [`dot_portable`]'s loop compiled for AVX2 with FMA, in sixteen lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_in_lanes::<16>(a, b, f32::mul_add)
}

/// Dot product in eight independent lanes, which the compiler turns into
/// SIMD (a single running sum cannot be reordered, so it would not): what
/// [`dot`] runs on processors without AVX2 and FMA (where `mul_add` would
/// be a library call, hence a plain multiply and add).
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    dot_in_lanes::<8>(a, b, |x, y, acc| acc + x * y)
}

/// The dot product in `N` running sums, each step `step(x, y, sum)`.
#[inline(always)]
fn dot_in_lanes<const N: usize>(a: &[f32], b: &[f32], step: impl Fn(f32, f32, f32) -> f32) -> f32 {
    let mut lanes = [0f32; N];
    let (ca, cb) = (a.chunks_exact(N), b.chunks_exact(N));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..N {
            lanes[i] = step(x[i], y[i], lanes[i]);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `n` random unit vectors of `dim` dimensions around `clusters` centres
/// (`clusters == 0`: uniform on the sphere), from `seed`: for tests and
/// the benchmark. The centres depend only on `clusters` and `dim`, so
/// queries drawn with another seed come from the same distribution.
pub fn random_unit_vectors(n: usize, dim: usize, clusters: usize, seed: u64) -> Vec<Arc<[f32]>> {
    use rand::{Rng, SeedableRng};
    fn gaussian(rng: &mut rand::rngs::StdRng) -> f32 {
        // Box–Muller.
        let u: f32 = rng.random_range(f32::EPSILON..1.0);
        let v: f32 = rng.random();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC3A7);
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| gaussian(&mut rng)).collect();
            if clusters > 0 {
                let c = &centres[rng.random_range(0..clusters)];
                for (x, y) in v.iter_mut().zip(c) {
                    *x = *x * 0.6 + y;
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            Arc::from(v)
        })
        .collect()
}

/// The share of the exact top `k` that `found` holds, averaged over queries.
pub fn recall(index: &Index, queries: &[Arc<[f32]>], k: usize) -> f64 {
    let mut hit = 0usize;
    for q in queries {
        let truth: std::collections::HashSet<usize> =
            index.scan(q, k).into_iter().map(|(_, i)| i).collect();
        hit += index
            .search(q, k)
            .into_iter()
            .filter(|(_, i)| truth.contains(i))
            .count();
    }
    hit as f64 / (queries.len() * k) as f64
}

mod file;
#[cfg(test)]
mod tests;
