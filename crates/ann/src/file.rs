//! The graph on disk: [`Index::write_graph`] and [`Index::read_graph`], so
//! a restart over the same passages does not build it again.

use std::io::{self, Read, Write};
use std::sync::Arc;

use super::{Graph, Index, MAX_LEVEL, Params};

/// First bytes of a graph written by [`Index::write_graph`].
const GRAPH_MAGIC: &[u8; 8] = b"SBHNSW02";

/// Reads one little-endian `u32`.
fn word_of(input: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    input.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

impl Index {
    /// Writes the graph (parameters, entry point, every node's passage and
    /// links) so that a restart over the same vectors can read it back with
    /// [`Index::read_graph`] instead of building it again. An exact index
    /// has no graph, and the vectors of waypoints are not kept: both are an
    /// error (a restart then builds the graph afresh).
    ///
    /// # Errors
    /// On a write failure, for an exact index, or one with waypoints.
    pub fn write_graph(&self, out: &mut impl Write) -> io::Result<()> {
        let Some(graph) = &self.graph else {
            return Err(io::Error::other("an exact index has no graph"));
        };
        if self.waypoints() > 0 {
            return Err(io::Error::other(
                "the graph keeps nodes of passages that are gone",
            ));
        }
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
        for (node, position) in graph.links.iter().zip(&self.positions) {
            out.write_all(&position.to_le_bytes())?;
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
        let mut word = || word_of(input);
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
        let mut positions = Vec::with_capacity(n);
        let mut taken = vec![false; n];
        for _ in 0..n {
            let position = word_of(input)?;
            if position as usize >= n || std::mem::replace(&mut taken[position as usize], true) {
                return Err(bad("a node for no passage, or two for one"));
            }
            positions.push(position);
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
        // Vectors by node, as the graph was built.
        let vectors = positions
            .iter()
            .map(|&p| vectors[p as usize].clone())
            .collect();
        Ok(Self {
            vectors,
            graph: Some(Graph {
                params,
                links,
                entry,
                top,
            }),
            positions,
        })
    }
}
