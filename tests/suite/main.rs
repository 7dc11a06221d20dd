//! The integration tests, one module per area, in one test binary.
//!
//! One binary instead of one per file: the suite is linked once, and the
//! tests of every area run side by side, so one test's idle wait (a real
//! back-off, teloxide's 10 s pause after a 5xx) overlaps the others' work
//! instead of adding to the run. `.cargo/config.toml` sets the number of
//! test threads above the number of cores for the same reason: most tests
//! wait on sockets, not on the CPU.
//!
//! Nothing here may change the whole process for the others: environment
//! variables are each module's own names, and a test that reads the log
//! captures it on its own runtime's threads (`limits::Log`), never with a
//! global subscriber.
//!
//! Kept as binaries of their own: the tests that need a service and are
//! ignored without it, which would compete for the CPU with the rest when
//! they run (`browser.rs`, `local_embed.rs`, `local_llm.rs`,
//! `scale_out.rs`). Run one area with `cargo test --test suite telegram::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../hostile/mod.rs"]
mod hostile;

mod accounts;
mod architecture;
mod cli;
mod console;
mod dashboard;
mod discord;
mod discord_fake_selftest;
mod hybrid;
mod kb;
mod learning;
mod limits;
mod live;
mod llm;
mod store;
mod telegram;
mod unicode;
mod workflow;
