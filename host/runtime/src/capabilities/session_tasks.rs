//! Background tasks the host keeps for a session while it runs elsewhere
//! (a pod's tunnel slots, its health watch): one set per session, which a
//! new set replaces — dropping a `JoinSet` aborts its tasks, so the earlier
//! tunnel or watch ends — and sets whose tasks all ended are let go.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::task::JoinSet;

/// Each session's current set of tasks (of one kind: tunnels, or watches).
#[derive(Default)]
pub struct SessionTasks(Mutex<HashMap<String, JoinSet<()>>>);

impl SessionTasks {
    /// Make `tasks` session `session`'s, ending its earlier ones.
    pub fn replace(&self, session: &str, tasks: JoinSet<()>) {
        if let Ok(mut all) = self.0.lock() {
            all.retain(|_, set| {
                while set.try_join_next().is_some() {}
                !set.is_empty()
            });
            all.insert(session.to_string(), tasks);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_set_ends_the_sessions_earlier_one_and_no_others() {
        let tasks = SessionTasks::default();
        let spawn_pending = || {
            let mut set = JoinSet::new();
            set.spawn(std::future::pending::<()>());
            set
        };
        let (mut first, mut other) = (spawn_pending(), spawn_pending());
        let (first_handle, other_handle) = (first.spawn(std::future::pending()), other.spawn(std::future::pending()));
        tasks.replace("a", first);
        tasks.replace("b", other);
        tasks.replace("a", spawn_pending());
        tokio::task::yield_now().await;
        assert!(first_handle.is_finished(), "a's earlier tasks were aborted");
        assert!(!other_handle.is_finished(), "b's run on");
    }
}
