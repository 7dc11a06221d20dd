//! Hot reload: watch folders and run a callback shortly after they change.
//!
//! Editors save in bursts (temp file, rename, chmod), so events are collected
//! for a short quiet period and the callback runs once per burst, on a
//! blocking thread because re-indexing is CPU and disk work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches `paths` recursively and calls `on_change` once per burst of
/// changes, `quiet` after the last event of the burst. Must be called inside
/// a tokio runtime.
///
/// # Errors
/// When the operating system refuses the watch (e.g. a missing folder).
pub fn watch(
    paths: &[PathBuf],
    quiet: Duration,
    on_change: impl Fn() + Send + Sync + 'static,
) -> Result<Watch, notify::Error> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(e) if e.kind.is_access() => {}
            Ok(_) => {
                let _ = tx.send(());
            }
            Err(e) => tracing::warn!("file watch error: {e}"),
        })?;
    for path in paths {
        watcher.watch(path, RecursiveMode::Recursive)?;
    }
    let on_change = Arc::new(on_change);
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Swallow the rest of the burst.
            loop {
                match tokio::time::timeout(quiet, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let callback = on_change.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || callback()).await {
                tracing::error!("reload task failed: {e}");
            }
        }
    });
    Ok(Watch {
        _watcher: watcher,
        task,
    })
}
