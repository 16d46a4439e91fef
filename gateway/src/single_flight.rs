//! Concurrent reads of one backend answer share a single call.
//!
//! Every open dashboard polls the trader's status, and each `GetStatus`
//! answer of a busy trader is hundreds of kilobytes built from one snapshot
//! that changes once per trading loop. When many requests arrive together,
//! the first starts the call and the others wait for its answer instead of
//! asking again, so the trader and the gateway do the work once per burst.
//!
//! Nothing is cached past the call: a request that arrives after a call
//! finished starts a new one, so an answer is never older than the call
//! that was already running when its request arrived. If the request that
//! started a call goes away (its client hung up), the call is dropped with
//! it and a waiting request starts its own.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// One call at a time whose answer every concurrent caller receives.
#[derive(Debug)]
pub struct SingleFlight<T> {
    /// The running call (its number and where its answer will appear).
    running: Mutex<Option<(u64, watch::Receiver<Option<T>>)>>,
    next: AtomicU64,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        Self {
            running: Mutex::new(None),
            next: AtomicU64::new(0),
        }
    }
}

/// Clears the running call's entry when the caller that started it is
/// done, also when it was dropped before the answer came.
struct Leader<'a, T> {
    flight: &'a SingleFlight<T>,
    id: u64,
}

impl<T> Drop for Leader<'_, T> {
    fn drop(&mut self) {
        let mut running = self
            .flight
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.as_ref().is_some_and(|(id, _)| *id == self.id) {
            *running = None;
        }
    }
}

enum Role<T> {
    Lead(u64, watch::Sender<Option<T>>),
    Wait(watch::Receiver<Option<T>>),
}

impl<T: Clone> SingleFlight<T> {
    /// The answer of the call running now, or of `call` started now when
    /// none is.
    pub async fn run<F, Fut>(&self, call: F) -> T
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        loop {
            match self.role() {
                Role::Lead(id, tx) => {
                    let _leader = Leader { flight: self, id };
                    let answer = call().await;
                    // Receivers may all be gone; the answer is still ours.
                    let _ = tx.send(Some(answer.clone()));
                    return answer;
                }
                Role::Wait(mut rx) => loop {
                    if let Some(answer) = rx.borrow_and_update().clone() {
                        return answer;
                    }
                    if rx.changed().await.is_err() {
                        // The caller that started it went away without an
                        // answer: start (or join) another call.
                        break;
                    }
                },
            }
        }
    }

    fn role(&self) -> Role<T> {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, rx)) = running.as_ref() {
            return Role::Wait(rx.clone());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        *running = Some((id, rx));
        Role::Lead(id, tx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_call() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let (release, gate) = watch::channel(false);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (flight, calls, gate) = (flight.clone(), calls.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                flight
                    .run(|| {
                        let (calls, mut gate) = (calls.clone(), gate.clone());
                        async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            let _ = gate.wait_for(|open| *open).await;
                            n
                        }
                    })
                    .await
            }));
        }
        // Every task is waiting on the first call before it may finish.
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(true).unwrap();
        for t in tasks {
            assert_eq!(
                t.await.unwrap(),
                1,
                "every caller got the first call's answer"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_call_after_the_last_one_ended_runs_again() {
        let flight = SingleFlight::<usize>::default();
        let calls = AtomicUsize::new(0);
        let call = || async { calls.fetch_add(1, Ordering::SeqCst) + 1 };
        assert_eq!(flight.run(call).await, 1);
        assert_eq!(flight.run(call).await, 2, "no answer is kept past its call");
    }

    #[tokio::test]
    async fn a_waiter_takes_over_when_the_first_caller_goes_away() {
        let flight = Arc::new(SingleFlight::<&'static str>::default());
        let first = {
            let flight = flight.clone();
            tokio::spawn(async move {
                flight
                    .run(|| async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        "never"
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let second = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.run(|| async { "second" }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        first.abort();
        let answer = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the waiter did not hang")
            .unwrap();
        assert_eq!(answer, "second");
    }
}
