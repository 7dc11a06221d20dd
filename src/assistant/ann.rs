//! Nearest-neighbour search over unit vectors for dense retrieval: an
//! exact scan below [`EXACT_BELOW`] vectors, a hierarchical navigable
//! small-world graph (HNSW, Malkov & Yashunin 2016) at and above it.
//!
//! The graph is built in one go from the vectors (in parallel, batch by
//! batch: each batch of new points searches the graph as it was before the
//! batch, then the links are written) and rebuilt when the passages change;
//! `cargo bench --bench ann` measures build time, latency and recall
//! against the exact scan (figures in the README).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
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
#[derive(Default)]
pub struct Index {
    vectors: Vec<Arc<[f32]>>,
    graph: Option<Graph>,
}

impl Index {
    /// An index over `vectors` (unit vectors of one dimension): exact below
    /// [`EXACT_BELOW`], a graph with the default [`Params`] above.
    pub fn build(vectors: Vec<Arc<[f32]>>) -> Self {
        if !uses_graph(vectors.len()) {
            Self::exact(vectors)
        } else {
            Self::graph(vectors, Params::default())
        }
    }

    /// An index that always scans every vector.
    pub fn exact(vectors: Vec<Arc<[f32]>>) -> Self {
        Self {
            vectors,
            graph: None,
        }
    }

    /// An index searching a graph built with `params`, whatever the size.
    pub fn graph(vectors: Vec<Arc<[f32]>>, params: Params) -> Self {
        let graph = (!vectors.is_empty()).then(|| Graph::build(&vectors, params));
        Self { vectors, graph }
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Whether there is no vector.
    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Whether searches scan every vector.
    pub fn is_exact(&self) -> bool {
        self.graph.is_none()
    }

    /// The `limit` vectors most similar to `query` (by dot product), as
    /// (similarity, position), most similar first.
    pub fn search(&self, query: &[f32], limit: usize) -> Vec<(f32, usize)> {
        match &self.graph {
            Some(graph) => graph.search(&self.vectors, query, limit),
            None => self.scan(query, limit),
        }
    }

    /// Writes the graph (parameters, entry point, every node's links) so
    /// that a restart over the same vectors can read it back with
    /// [`Index::read_graph`] instead of building it again. An exact index
    /// has no graph: an error.
    ///
    /// # Errors
    /// On a write failure, or for an exact index.
    pub fn write_graph(&self, out: &mut impl Write) -> io::Result<()> {
        let Some(graph) = &self.graph else {
            return Err(io::Error::other("an exact index has no graph"));
        };
        out.write_all(GRAPH_MAGIC)?;
        let p = graph.params;
        for n in [
            p.m,
            p.ef_construction,
            p.ef_search,
            self.vectors.len(),
            graph.entry as usize,
            graph.top,
        ] {
            out.write_all(&u32::try_from(n).map_err(io::Error::other)?.to_le_bytes())?;
        }
        for node in &graph.links {
            out.write_all(&[u8::try_from(node.len()).map_err(io::Error::other)?])?;
            for layer in node {
                out.write_all(&(layer.len() as u32).to_le_bytes())?;
                for link in layer {
                    out.write_all(&link.to_le_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// An index over `vectors` searching the graph `input` holds, as
    /// written by [`Index::write_graph`] for these same vectors in this
    /// order (the caller keys the file to them). Whatever does not fit
    /// (another count, a link or layer out of range, a short file) is an
    /// error, so a damaged file is never searched.
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidData`] for a graph that does not fit, or a
    /// read failure.
    pub fn read_graph(vectors: Vec<Arc<[f32]>>, input: &mut impl Read) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic)?;
        if &magic != GRAPH_MAGIC {
            return Err(bad("not a graph file"));
        }
        let mut word = || -> io::Result<u32> {
            let mut b = [0u8; 4];
            input.read_exact(&mut b)?;
            Ok(u32::from_le_bytes(b))
        };
        let (m, ef_construction, ef_search) = (word()?, word()?, word()?);
        let (n, entry, top) = (word()? as usize, word()?, word()? as usize);
        if n != vectors.len() || n == 0 || entry as usize >= n || top > MAX_LEVEL {
            return Err(bad("the graph is for other vectors"));
        }
        let params = Params {
            m: m as usize,
            ef_construction: ef_construction as usize,
            ef_search: ef_search as usize,
        };
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            let mut layers = [0u8; 1];
            input.read_exact(&mut layers)?;
            let layers = layers[0] as usize;
            if layers == 0 || layers > MAX_LEVEL + 1 {
                return Err(bad("a node on no layer or too many"));
            }
            let mut node = Vec::with_capacity(layers);
            for layer in 0..layers {
                let mut b = [0u8; 4];
                input.read_exact(&mut b)?;
                let count = u32::from_le_bytes(b) as usize;
                let max = if layer == 0 { params.m * 2 } else { params.m };
                if count > max {
                    return Err(bad("a node with more links than the graph allows"));
                }
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    input.read_exact(&mut b)?;
                    let link = u32::from_le_bytes(b);
                    if link as usize >= n {
                        return Err(bad("a link to a node that does not exist"));
                    }
                    list.push(link);
                }
                node.push(list);
            }
            links.push(node);
        }
        if links[entry as usize].len() != top + 1 {
            return Err(bad("the entry point is not on the top layer"));
        }
        let mut rest = [0u8; 1];
        if input.read(&mut rest)? != 0 {
            return Err(bad("bytes after the graph"));
        }
        Ok(Self {
            vectors,
            graph: Some(Graph {
                params,
                links,
                entry,
                top,
            }),
        })
    }

    /// The exact answer, whatever the index: every vector scored.
    pub fn scan(&self, query: &[f32], limit: usize) -> Vec<(f32, usize)> {
        let mut scored: Vec<(f32, usize)> = self
            .vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (dot(query, v), i))
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

struct Graph {
    params: Params,
    /// For each node, its links on each layer it is on (layer 0 first).
    links: Vec<Vec<Vec<u32>>>,
    entry: u32,
    top: usize,
}

/// First bytes of a graph written by [`Index::write_graph`].
const GRAPH_MAGIC: &[u8; 8] = b"SBHNSW01";

/// Highest layer a point is drawn on (see [`levels`]).
const MAX_LEVEL: usize = 16;

/// Points inserted one by one before batches start.
const SEED: usize = 256;

impl Graph {
    fn build(vectors: &[Arc<[f32]>], params: Params) -> Self {
        let levels = levels(vectors.len(), params.m);
        let mut graph = Graph {
            params,
            links: vec![vec![Vec::new()]],
            entry: 0,
            top: 0,
        };
        graph.links[0] = vec![Vec::new(); levels[0] + 1];
        graph.top = levels[0];
        let mut start = 1;
        while start < vectors.len() {
            // Batches grow with the graph (a batch is a few percent of it),
            // so most points see a graph nearly as large as the final one.
            let size = if start < SEED { 1 } else { (start / 32).max(1) };
            let end = (start + size).min(vectors.len());
            graph.insert_batch(vectors, &levels, start..end);
            start = end;
        }
        graph
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
        let found = self.layer(vectors, query, &entry, self.params.ef_search.max(limit), 0);
        found
            .into_iter()
            .take(limit)
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

/// Dot product in eight independent lanes, which the compiler turns into
/// SIMD (a single running sum cannot be reordered, so it would not).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn the_graph_finds_what_the_scan_finds() {
        let vectors = random_unit_vectors(2000, 32, 40, 1);
        let queries = random_unit_vectors(100, 32, 40, 2);
        let index = Index::graph(vectors, Params::default());
        assert!(!index.is_exact());
        let r = recall(&index, &queries, 10);
        assert!(r >= 0.95, "recall@10 {r}");
        // Results come most similar first, with their true similarity.
        let q = &queries[0];
        let found = index.search(q, 10);
        assert_eq!(found.len(), 10);
        assert!(found.windows(2).all(|w| w[0].0 >= w[1].0));
        for (s, i) in found {
            assert!((s - dot(q, &index.vectors[i])).abs() < 1e-6);
        }
    }

    #[test]
    fn uniform_vectors_are_found_too() {
        let vectors = random_unit_vectors(2000, 24, 0, 3);
        let queries = random_unit_vectors(100, 24, 0, 4);
        let index = Index::graph(vectors, Params::default());
        let r = recall(&index, &queries, 10);
        assert!(r >= 0.9, "recall@10 {r}");
    }

    #[test]
    fn small_indexes_scan_large_ones_use_the_graph() {
        let small = Index::build(random_unit_vectors(EXACT_BELOW - 1, 8, 0, 5));
        assert!(small.is_exact());
        let q = random_unit_vectors(1, 8, 0, 6).pop().unwrap();
        assert_eq!(small.search(&q, 5), small.scan(&q, 5));
        // (A graph of that size takes a minute to build unoptimised.)
        assert!(!uses_graph(EXACT_BELOW - 1));
        assert!(uses_graph(EXACT_BELOW));
    }

    #[test]
    fn a_written_graph_reads_back_and_answers_the_same() {
        let vectors = random_unit_vectors(3_000, 32, 20, 7);
        let built = Index::graph(vectors.clone(), Params::default());
        let mut bytes = Vec::new();
        built.write_graph(&mut bytes).unwrap();
        let read = Index::read_graph(vectors.clone(), &mut bytes.as_slice()).unwrap();
        assert!(!read.is_exact());
        for q in random_unit_vectors(50, 32, 20, 8) {
            assert_eq!(built.search(&q, 10), read.search(&q, 10));
        }
        // A graph never fits other vectors, a cut file or trailing bytes.
        let fewer = vectors[..2_999].to_vec();
        assert!(Index::read_graph(fewer, &mut bytes.as_slice()).is_err());
        let cut = &bytes[..bytes.len() - 3];
        assert!(Index::read_graph(vectors.clone(), &mut &cut[..]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Index::read_graph(vectors.clone(), &mut longer.as_slice()).is_err());
        assert!(Index::exact(vectors).write_graph(&mut Vec::new()).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

        #[test]
        fn damaged_graph_files_are_refused_or_searchable(
            flips in proptest::collection::vec((0usize..20_000, proptest::prelude::any::<u8>()), 1..8)
        ) {
            let vectors = random_unit_vectors(200, 8, 4, 3);
            let built = Index::graph(vectors.clone(), Params::default());
            let mut bytes = Vec::new();
            built.write_graph(&mut bytes).unwrap();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            // Either refused, or a graph whose every link is in range:
            // searching it must not panic.
            if let Ok(read) = Index::read_graph(vectors.clone(), &mut bytes.as_slice()) {
                for q in vectors.iter().take(5) {
                    let found = read.search(q, 5);
                    proptest::prop_assert!(found.len() <= 5);
                }
            }
        }
    }

    #[test]
    fn empty_and_tiny_indexes_answer() {
        assert!(Index::build(Vec::new()).search(&[1.0, 0.0], 3).is_empty());
        assert!(
            Index::graph(Vec::new(), Params::default())
                .search(&[1.0, 0.0], 3)
                .is_empty()
        );
        let two = vec![Arc::from(vec![1.0, 0.0]), Arc::from(vec![0.0, 1.0])];
        let index = Index::graph(two, Params::default());
        let found = index.search(&[0.0, 1.0], 5);
        assert_eq!(found.iter().map(|f| f.1).collect::<Vec<_>>(), vec![1, 0]);
    }
}
