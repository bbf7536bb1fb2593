use super::*;
use crate::store::queue::MemoryQueue;
use crate::time::ManualClock;
use async_trait::async_trait;

const MONDAY: u64 = 20_780 * 86_400_000;
const H: u64 = 3_600_000;

fn fixture(
    at: u64,
) -> (
    Scheduler,
    Arc<MemoryJobs>,
    Arc<MemoryQueue>,
    Arc<ManualClock>,
) {
    let store = Arc::new(MemoryJobs::default());
    let queue = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(at));
    (
        Scheduler::new(store.clone(), queue.clone(), clock.clone()),
        store,
        queue,
        clock,
    )
}

fn request(v: Value) -> ScheduleRequest {
    ScheduleRequest::from_json(&v).unwrap()
}

/// A queue whose sends never finish while `stalled` (a sender that dies mid-send).
#[derive(Default)]
struct StallingQueue {
    stalled: std::sync::atomic::AtomicBool,
    inner: MemoryQueue,
}

#[async_trait]
impl QueueStore for StallingQueue {
    async fn send(&self, m: OutMessage) -> Result<String, crate::store::queue::QueueError> {
        if self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.send(m).await
    }
}

#[tokio::test]
async fn a_tick_that_dies_mid_send_leaves_the_job_to_the_next_tick_after_its_lease() {
    let store = Arc::new(MemoryJobs::default());
    let queue = Arc::new(StallingQueue::default());
    let clock = Arc::new(ManualClock::at(MONDAY));
    let s = Scheduler::new(store.clone(), queue.clone(), clock.clone());
    let twenty_min = json!({"envelope": {"diy": true, "function": "f"}, "delay": 1_200_000});
    let r = s.schedule(request(twenty_min)).await.unwrap();
    assert_eq!(r.via, Via::Table);
    clock.advance(Duration::from_secs(20 * 60));
    queue
        .stalled
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // The tick is cut off while its send is in flight (as when its process dies).
    let cut = tokio::time::timeout(Duration::from_millis(50), s.tick()).await;
    assert!(cut.is_err());
    queue
        .stalled
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let during = s.tick().await.unwrap();
    assert_eq!(during.enqueued, 0, "the lease still holds: {during:?}");
    clock.advance(SEND_LEASE);
    let after = s.tick().await.unwrap();
    assert_eq!(after.enqueued, 1, "{after:?}");
    assert_eq!(queue.inner.sent().len(), 1);
    assert_eq!(
        store.get(&r.job_id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        s.tick().await.unwrap().due,
        0,
        "queued jobs leave the index"
    );
}

#[tokio::test]
async fn a_job_too_large_to_send_is_refused_or_failed_not_retried() {
    let (s, store, queue, clock) = fixture(MONDAY);
    let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
    let e = s
        .schedule(request(
            json!({"envelope": {"diy": true, "function": "f", "options": {"big": big}}}),
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_schedule");
    // One stored before the check existed: the tick marks it failed, once.
    let job = Job {
        id: "old".into(),
        version: "v".into(),
        state: JobState::Scheduled,
        due_at: EpochMillis(MONDAY),
        body: big,
        lease_until: None,
    };
    store.put(&job, EpochSeconds(0)).await.unwrap();
    let first = s.tick().await.unwrap();
    assert_eq!((first.due, first.failed), (1, 1), "{first:?}");
    clock.advance(Duration::from_secs(120));
    assert_eq!(s.tick().await.unwrap().due, 0, "not retried every minute");
    assert_eq!(
        store.get("old").await.unwrap().unwrap().state,
        JobState::Failed
    );
    assert!(queue.sent().is_empty());
}

#[tokio::test]
async fn short_delays_go_straight_to_the_queue() {
    let (s, store, queue, _) = fixture(MONDAY);
    let r = s
        .schedule(request(
            json!({"envelope": {"diy": true, "function": "f"}, "delay": 60_000}),
        ))
        .await
        .unwrap();
    assert_eq!(r.via, Via::Queue);
    assert_eq!(r.due_at, EpochMillis(MONDAY + 60_000));
    let sent = queue.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].delay, Some(Duration::from_secs(60)));
    let body: Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["function"], "f");
    assert_eq!(
        JobRef::from_body(&body),
        Some(JobRef {
            id: r.job_id.clone(),
            version: r.version.clone()
        })
    );
    assert_eq!(
        store.get(&r.job_id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    // The tick never touches a queued job.
    assert_eq!(s.tick().await.unwrap().due, 0);
}

#[tokio::test]
async fn windows_and_long_delays_wait_for_the_tick_which_moves_them_once() {
    // Saturday 10:00, window monday-friday 09:00-17:00 → due Monday 09:00.
    let (s, _, queue, clock) = fixture(MONDAY + 5 * 24 * H + 10 * H);
    let r = s
        .schedule(request(json!({
            "envelope": {"diy": true, "function": "f"},
            "key": {"email": "hash"},
            "window": {"day": "monday-friday", "time": "09:00-17:00"}
        })))
        .await
        .unwrap();
    assert_eq!(r.via, Via::Table);
    assert_eq!(r.due_at, EpochMillis(MONDAY + 7 * 24 * H + 9 * H));
    assert_eq!(r.to_json()["dueAt"], "2026-11-30T09:00:00.000Z");
    // Sunday: not due.
    clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(s.tick().await.unwrap(), TickReport::default());
    // Monday 08:59:30: due within the lookahead, sent with the remaining 30 s.
    clock.set(MONDAY + 7 * 24 * H + 9 * H - 30_000);
    let t = s.tick().await.unwrap();
    assert_eq!((t.due, t.enqueued), (1, 1));
    assert_eq!(queue.sent()[0].delay, Some(Duration::from_secs(30)));
    assert_eq!(s.tick().await.unwrap().enqueued, 0);
    assert_eq!(queue.sent().len(), 1);
}

#[tokio::test]
async fn the_same_key_replaces_and_cancel_removes() {
    let (s, store, _, _) = fixture(MONDAY);
    let req =
        json!({"envelope": {"diy": true, "function": "f"}, "key": {"k": 1}, "delay": 3_600_000});
    let a = s.schedule(request(req.clone())).await.unwrap();
    let b = s.schedule(request(req)).await.unwrap();
    assert_eq!(a.job_id, b.job_id);
    assert_ne!(a.version, b.version);
    let old = JobRef {
        id: a.job_id.clone(),
        version: a.version,
    };
    let new = JobRef {
        id: b.job_id.clone(),
        version: b.version,
    };
    assert!(!s.is_current(&old).await.unwrap());
    assert!(s.is_current(&new).await.unwrap());
    assert!(s.cancel(&b.job_id).await.unwrap());
    assert!(!s.cancel(&b.job_id).await.unwrap());
    assert!(!s.is_current(&new).await.unwrap());
    assert!(store.get(&b.job_id).await.unwrap().is_none());
}

#[test]
fn bad_requests_are_explained() {
    for (v, needle) in [
        (json!([]), "JSON object"),
        (json!({"envelope": 1}), "envelope must be an object"),
        (json!({"envelope": {"diy": true}}), "envelope.function"),
        (json!({"envelope": {"function": "f"}, "delay": -1}), "delay"),
        (
            json!({"envelope": {"function": "f"}, "delay": 1.5}),
            "delay",
        ),
        (
            json!({"envelope": {"function": "f"}, "delay": u64::MAX}),
            "at most",
        ),
        (
            json!({"envelope": {"function": "f"}, "delay": 31_708_800_001u64}),
            "at most",
        ),
        (
            json!({"envelope": {"function": "f"}, "window": {"day": "nope"}}),
            "unknown day",
        ),
    ] {
        let e = ScheduleRequest::from_json(&v).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        assert_eq!(e.code(), "invalid_schedule");
    }
}
