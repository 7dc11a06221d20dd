//! Channels: each turns a platform's messages into [`crate::assistant::Turn`]s
//! and renders [`crate::assistant::Reply`]s back.

pub mod console;
pub mod discord;
pub mod stream;
pub mod telegram;
pub mod web;

/// Where to cut `head` (the longest prefix that fits a platform's limit):
/// after its last paragraph break, else line break, else sentence end or
/// space, as long as that keeps more than half of it; else at its end.
pub fn cut_point(head: &str) -> usize {
    let fit = head.len();
    ["\n\n", "\n", ". ", " "]
        .iter()
        .find_map(|sep| {
            head.rfind(sep)
                .filter(|&at| at > fit / 2)
                .map(|at| at + sep.len())
        })
        .unwrap_or(fit)
}
