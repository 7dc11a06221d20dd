//! Tests of the nearest-neighbour index.
use super::*;

#[test]
fn dot_matches_the_plain_sum() {
    let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
    let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
    assert!((dot(&a, &b) - plain).abs() < 1e-4);
    // Every length around the lane widths, and MiniLM's 384, through
    // whichever version this processor runs and the portable one.
    for len in (0..70).chain([383, 384, 385]) {
        let a: Vec<f32> = (0..len)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..len)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
        assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-3, "{len}");
        assert!(
            (f64::from(dot_portable(&a, &b)) - plain).abs() < 1e-3,
            "{len}"
        );
    }
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
    // Enough nodes for upper layers (about one in 16 per layer).
    let vectors = random_unit_vectors(1_000, 32, 20, 7);
    let built = Index::graph(vectors.clone(), Params::default());
    let mut bytes = Vec::new();
    built.write_graph(&mut bytes).unwrap();
    let read = Index::read_graph(vectors.clone(), &mut bytes.as_slice()).unwrap();
    assert!(!read.is_exact());
    for q in random_unit_vectors(50, 32, 20, 8) {
        assert_eq!(built.search(&q, 10), read.search(&q, 10));
    }
    // A graph never fits other vectors, a cut file or trailing bytes.
    let fewer = vectors[..999].to_vec();
    assert!(Index::read_graph(fewer, &mut bytes.as_slice()).is_err());
    let cut = &bytes[..bytes.len() - 3];
    assert!(Index::read_graph(vectors.clone(), &mut &cut[..]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Index::read_graph(vectors.clone(), &mut longer.as_slice()).is_err());
    assert!(Index::exact(vectors).write_graph(&mut Vec::new()).is_err());
}

/// Vectors and the file of a graph over them.
type GraphFile = (Vec<Arc<[f32]>>, Vec<u8>);

/// The vectors of a small graph and the graph's file, built once for every
/// case (building it is most of a case's time in a debug build).
fn small_graph_file() -> &'static GraphFile {
    static FILE: std::sync::OnceLock<GraphFile> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let vectors = random_unit_vectors(200, 8, 4, 3);
        let built = Index::graph(vectors.clone(), Params::default());
        let mut bytes = Vec::new();
        built.write_graph(&mut bytes).unwrap();
        (vectors, bytes)
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

    #[test]
    fn damaged_graph_files_are_refused_or_searchable(
        flips in proptest::collection::vec((0usize..20_000, proptest::prelude::any::<u8>()), 1..8)
    ) {
        let (vectors, mut bytes) = small_graph_file().clone();
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

/// The vectors of `all` at `keep` (positions in `all`), then `add`.
fn changed(
    all: &[Arc<[f32]>],
    keep: &[usize],
    add: &[Arc<[f32]>],
) -> (Vec<Arc<[f32]>>, Vec<Option<usize>>) {
    let mut vectors: Vec<Arc<[f32]>> = keep.iter().map(|&i| all[i].clone()).collect();
    let mut previous: Vec<Option<usize>> = keep.iter().map(|&i| Some(i)).collect();
    vectors.extend(add.iter().cloned());
    previous.extend(add.iter().map(|_| None));
    (vectors, previous)
}

#[test]
fn an_updated_graph_finds_what_the_scan_finds_and_never_a_removed_passage() {
    let all = random_unit_vectors(2000, 32, 40, 1);
    let index = Index::graph(all.clone(), Params::default());
    // Every tenth passage removed, the rest in another order, 150 new.
    let keep: Vec<usize> = (0..2000).rev().filter(|i| i % 10 != 0).collect();
    let add = random_unit_vectors(150, 32, 40, 3);
    let (vectors, previous) = changed(&all, &keep, &add);
    let updated = index.updated_from(vectors.clone(), &previous, 0);
    assert!(!updated.is_exact(), "updated, not built again");
    assert_eq!(updated.len(), vectors.len());
    assert_eq!(updated.waypoints(), 200);
    let queries = random_unit_vectors(100, 32, 40, 2);
    assert!(recall(&updated, &queries, 10) >= 0.95);
    for q in &queries {
        for (s, p) in updated.search(q, 10) {
            assert!(
                (s - dot(q, &vectors[p])).abs() < 1e-5,
                "positions are the new ones"
            );
        }
    }
    // A new passage is found as itself.
    let (s, p) = updated.search(&add[7], 1)[0];
    assert_eq!(p, keep.len() + 7);
    assert!(s > 0.999);
}

#[test]
fn an_update_removing_many_passages_builds_afresh() {
    let all = random_unit_vectors(1000, 16, 20, 1);
    let index = Index::graph(all.clone(), Params::default());
    let keep: Vec<usize> = (0..600).collect();
    let (vectors, previous) = changed(&all, &keep, &[]);
    let updated = index.updated_from(vectors, &previous, 0);
    assert_eq!((updated.len(), updated.waypoints()), (600, 0));
    let small = updated.updated(all[..10].to_vec(), &(0..10).map(Some).collect::<Vec<_>>());
    assert!(small.is_exact(), "below EXACT_BELOW the scan again");
}

#[test]
fn a_graph_with_added_passages_is_saved_and_one_with_waypoints_is_not() {
    let all = random_unit_vectors(1000, 16, 20, 1);
    let index = Index::graph(all.clone(), Params::default());
    let add = random_unit_vectors(50, 16, 20, 4);
    // New passages first: node order and passage order now differ.
    let mut vectors = add.clone();
    vectors.extend(all.iter().cloned());
    let previous: Vec<Option<usize>> = (0..50).map(|_| None).chain((0..1000).map(Some)).collect();
    let updated = index.updated_from(vectors.clone(), &previous, 0);
    let mut file = Vec::new();
    updated.write_graph(&mut file).unwrap();
    let read = Index::read_graph(vectors.clone(), &mut file.as_slice()).unwrap();
    for q in random_unit_vectors(20, 16, 20, 5) {
        assert_eq!(read.search(&q, 5), updated.search(&q, 5));
    }
    let (fewer, previous) = changed(&vectors, &(1..1050).collect::<Vec<_>>(), &[]);
    let with_waypoint = read.updated_from(fewer, &previous, 0);
    assert_eq!(with_waypoint.waypoints(), 1);
    assert!(with_waypoint.write_graph(&mut Vec::new()).is_err());
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
