//! Channels: each turns a platform's messages into [`crate::assistant::Turn`]s
//! and renders [`crate::assistant::Reply`]s back.

pub mod console;
pub mod telegram;
pub mod web;
