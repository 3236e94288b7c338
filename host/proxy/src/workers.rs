//! The threads that serve sessions' connections: one single-threaded tokio
//! runtime per CPU, each on a thread of its own (`clauderond-pxN`).
//!
//! A connection accepted by a session's listener is handed to one of them,
//! round robin, and lives there until it closes — its CONNECT tunnel, the
//! tunnel's own upstream connection ([`crate::upstream`]'s lane) and its
//! WebSocket relays included, since they are spawned from it. So a request
//! and its response never wake another thread. On the daemon's
//! multi-threaded runtime each keep-alive request also woke a second, idle
//! worker that found nothing to do: about a third of the proxy's CPU went to
//! switching threads (`perf` during `just bench`), which is the way nginx's
//! one-thread-per-worker design avoids.
//!
//! The accept loops stay on the daemon's runtime; they are cheap and
//! hand off at once.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// A pool of single-threaded runtimes; stopped when dropped (each thread's
/// runtime is dropped on its own thread, with the connections it held).
pub(crate) struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stops: Vec<oneshot::Sender<()>>,
}

impl Workers {
    /// One worker per CPU the daemon may use. Workers that cannot start are
    /// left out (with a warning); with none, connections are served on the
    /// caller's runtime as before.
    pub(crate) fn start() -> Self {
        let count = std::thread::available_parallelism().map_or(1, usize::from);
        let (mut handles, mut stops) = (Vec::new(), Vec::new());
        for i in 0..count {
            match Self::worker(i) {
                Ok((handle, stop)) => {
                    handles.push(handle);
                    stops.push(stop);
                }
                Err(e) => tracing::warn!("proxy worker {i} did not start ({e}); fewer threads serve connections"),
            }
        }
        Self { handles, next: AtomicUsize::new(0), stops }
    }

    /// Start worker `i`: its runtime's handle, and the sender that stops it.
    fn worker(i: usize) -> std::io::Result<(Handle, oneshot::Sender<()>)> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        // Linux keeps 15 bytes of a thread's name; `clauderond` first, as the bench counts its CPU by it.
        std::thread::Builder::new().name(format!("clauderond-px{i}")).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            let _ = ready_tx.send(Ok(runtime.handle().clone()));
            // Serve until stopped (a dropped sender stops it too).
            runtime.block_on(async move {
                let _ = stop_rx.await;
            });
        })?;
        let handle = ready_rx.recv().map_err(|_| std::io::Error::other("the worker thread ended at once"))??;
        Ok((handle, stop_tx))
    }

    /// Serve `task` on the next worker.
    pub(crate) fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.handles.is_empty() {
            tokio::spawn(task);
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(task);
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_threads_in_turn_and_stop_with_them() {
        let workers = Workers::start();
        let count = workers.handles.len();
        assert!(count >= 1, "at least one worker starts");
        let mut names = Vec::new();
        for _ in 0..count * 2 {
            let (tx, rx) = oneshot::channel();
            workers.spawn(async move {
                let _ = tx.send(std::thread::current().name().map(String::from));
            });
            names.push(rx.await.expect("the task ran").expect("a named thread"));
        }
        assert!(names.iter().all(|n| n.starts_with("clauderond-px")), "{names:?}");
        assert_eq!(names[0], names[count], "round robin: the same worker every {count} tasks");
        drop(workers);
    }
}
