//! Lost replies: a DynamoDB write that is **applied** but whose reply never reaches the client
//! (the connection is reset after the emulator applied it, or the reply comes after the client's
//! read timeout). The SDK retries the same request; the retry meets the item its own first
//! attempt wrote. Each test injects the fault on the first attempt of one write that decides an
//! outcome and checks that the outcome is the one a clean reply would have given. Each fails on
//! a store that takes its own earlier attempt for someone else's.

use aws_config::SdkConfig;
use integration_tests::aws::{create_table, moto_config, moto_endpoint, sdk_config_for};
use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integrator_lambda::aws::Table;
use integrator_lambda::aws::dedup::DynamoDedup;
use integrator_lambda::aws::idempotency::DynamoIdempotency;
use integrator_lambda::store::dedup::{Claim, Dedup, DedupKey, Sighting, check_page};
use integrator_lambda::store::idempotency::{Idempotency, IdempotencyKey, OnceError};
use integrator_lambda::time::{EpochMillis, EpochSeconds};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The client's read timeout plus a margin: a reply held this long arrives after the client
/// gave up on the attempt.
fn late() -> Duration {
    integrator_lambda::aws::READ_TIMEOUT + Duration::from_secs(1)
}

/// The two faults of this file: the reply lost, and the reply late.
fn faults() -> [Fault; 2] {
    [Fault::LostReply, Fault::LateReply(late())]
}

/// A table on the emulator, a fault proxy in front of it, and SDK configurations for both.
struct Setup {
    direct: SdkConfig,
    via: SdkConfig,
    table: String,
    proxy: CountingProxy,
}

async fn setup(prefix: &str) -> Setup {
    let direct = moto_config().await;
    let table = create_table(&direct, prefix).await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let via = sdk_config_for(&proxy.endpoint()).await;
    Setup {
        direct,
        via,
        table,
        proxy,
    }
}

impl Setup {
    fn dedup(&self) -> Dedup {
        Dedup::new(Arc::new(DynamoDedup::new(Table::new(
            &self.via,
            &self.table,
        ))))
    }
    fn direct_dedup(&self) -> Dedup {
        Dedup::new(Arc::new(DynamoDedup::new(Table::new(
            &self.direct,
            &self.table,
        ))))
    }
}

/// Dedup check (`UpdateItem`): a new key whose write landed but whose reply was lost is still
/// new — the record is delivered, not dropped as a duplicate — and a second check is a
/// duplicate.
#[tokio::test]
async fn dedup_check_a_new_key_stays_new_when_its_reply_is_lost() {
    for fault in faults() {
        let s = setup("lost-check").await;
        let dedup = s.dedup();
        let key = DedupKey::from_caller("lost", &format!("order-{}", fault.kind()));
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        assert_eq!(
            dedup.check(&key).await.expect("check"),
            Sighting::New,
            "{fault:?}: the check's own first attempt is not someone else's sighting"
        );
        assert!(
            s.proxy.count("UpdateItem") >= 2,
            "{fault:?}: the SDK retried: {:?}",
            s.proxy.counts()
        );
        assert_eq!(
            s.direct_dedup().check(&key).await.expect("check"),
            Sighting::Duplicate,
            "{fault:?}: the key is marked"
        );
    }
}

/// Dedup check of a duplicate whose refresh reply is lost: still a duplicate.
#[tokio::test]
async fn dedup_check_a_duplicate_stays_a_duplicate_when_a_reply_is_lost() {
    let s = setup("lost-dup").await;
    let key = DedupKey::from_caller("lost", "seen");
    assert_eq!(s.direct_dedup().check(&key).await.unwrap(), Sighting::New);
    for n in 0..2 {
        s.proxy
            .inject(Rule::once("UpdateItem", Fault::LostReply).after(n));
        assert_eq!(s.dedup().check(&key).await.unwrap(), Sighting::Duplicate);
    }
}

/// A page checked as `dropDuplicates` and `upsertRecords` check theirs: ten records never seen,
/// one write's reply lost: all ten are new (none dropped, none "already imported").
#[tokio::test]
async fn a_page_of_new_records_loses_none_when_one_reply_is_lost() {
    for fault in faults() {
        let s = setup("lost-page").await;
        let dedup = s.dedup();
        let scope = format!("page-{}", fault.kind());
        let page: Vec<Value> = (0..10).map(|i| json!({"id": i})).collect();
        s.proxy
            .inject(Rule::once("UpdateItem", fault.clone()).after(4));
        let out = check_page(&dedup, &scope, &page, &["id".to_owned()], 4)
            .await
            .expect("page");
        assert_eq!(out, vec![Sighting::New; 10], "{fault:?}");
        let again = check_page(&s.direct_dedup(), &scope, &page, &["id".to_owned()], 4)
            .await
            .expect("page");
        assert_eq!(again, vec![Sighting::Duplicate; 10], "{fault:?}");
    }
}

/// Incoming claim (`UpdateItem` with a lease): a claim whose reply was lost holds the key
/// (the webhook is queued now, not answered "in progress" until the lease runs out), and its
/// confirmation (`UpdateItem`) with a lost reply leaves the key done.
#[tokio::test]
async fn dedup_claim_and_confirm_hold_when_their_replies_are_lost() {
    for fault in faults() {
        let s = setup("lost-claim").await;
        let dedup = s.dedup();
        let key = DedupKey::from_caller("claim", &fault.kind());
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        let token = match dedup
            .claim(&key, Duration::from_secs(60))
            .await
            .expect("claim")
        {
            Claim::Claimed(t) => t,
            other => panic!("{fault:?}: the claim's own first attempt holds it: {other:?}"),
        };
        assert_eq!(
            s.direct_dedup()
                .claim(&key, Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::InFlight
        );
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        dedup.confirm(&key, &token).await.expect("confirm");
        assert_eq!(
            s.direct_dedup()
                .claim(&key, Duration::from_secs(60))
                .await
                .unwrap(),
            Claim::Duplicate,
            "{fault:?}"
        );
    }
}

/// Incoming release (`DeleteItem`) whose reply was lost: the key is free and the release does
/// not fail.
#[tokio::test]
async fn dedup_release_frees_the_key_when_its_reply_is_lost() {
    let s = setup("lost-release").await;
    let dedup = s.dedup();
    let key = DedupKey::from_caller("release", "k");
    let Claim::Claimed(token) = dedup.claim(&key, Duration::from_secs(60)).await.unwrap() else {
        panic!("claimed")
    };
    s.proxy.inject(Rule::once("DeleteItem", Fault::LostReply));
    dedup.release(&key, &token).await.expect("release");
    assert!(matches!(
        s.direct_dedup()
            .claim(&key, Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
}

/// The idempotency store on the emulator through the proxy.
fn idempotency(s: &Setup) -> Idempotency {
    Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(
        &s.via, &s.table,
    ))))
}

/// A deadline a minute away, for the in-progress lock.
fn in_a_minute() -> EpochMillis {
    EpochMillis(EpochMillis::now().0 + 60_000)
}

/// Idempotency claim (`PutItem`): a first call whose lock write landed but whose reply was lost
/// still runs its work once and answers it — not "already in progress" (a 409 for the only
/// call there is) — and the completion (`UpdateItem`) with a lost reply still stores the result
/// that a later call replays.
#[tokio::test]
async fn idempotency_claim_and_complete_hold_when_their_replies_are_lost() {
    for fault in faults() {
        let s = setup("lost-idem").await;
        let idem = idempotency(&s);
        let key = IdempotencyKey::from_caller("lost", &fault.kind(), &json!({"a": 1}));
        s.proxy.inject(Rule::once("PutItem", fault.clone()));
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        let ran = std::sync::atomic::AtomicU32::new(0);
        let out = idem
            .once(&key, in_a_minute(), || async {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>("{\"done\":true}".to_owned())
            })
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: the first call runs: {e:?}"));
        assert!(!out.is_replayed(), "{fault:?}");
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
        let again = idem
            .once(&key, in_a_minute(), || async {
                Ok::<_, std::convert::Infallible>("{\"second\":true}".to_owned())
            })
            .await
            .expect("replayed");
        assert!(again.is_replayed(), "{fault:?}");
        assert_eq!(again.as_str(), "{\"done\":true}");
    }
}

/// Idempotency release (`DeleteItem`) after failed work, its reply lost: the failure is
/// reported as the work's own error (not a lost lock), and a retry runs the work.
#[tokio::test]
async fn idempotency_release_after_a_failure_holds_when_its_reply_is_lost() {
    let s = setup("lost-idem-release").await;
    let idem = idempotency(&s);
    let key = IdempotencyKey::from_caller("lost", "release", &json!({"a": 1}));
    s.proxy.inject(Rule::once("DeleteItem", Fault::LostReply));
    let failed = idem
        .once(&key, in_a_minute(), || async { Err::<String, _>("boom") })
        .await
        .expect_err("the work failed");
    assert!(
        matches!(failed, OnceError::Handler("boom")),
        "the work's own error: {failed:?}"
    );
    let retry = idem
        .once(&key, in_a_minute(), || async {
            Ok::<_, &str>("{\"ok\":1}".to_owned())
        })
        .await
        .expect("the retry runs");
    assert!(!retry.is_replayed());
}

/// Job lease (`UpdateItem`): a tick's claim of a due job whose reply was lost still holds the
/// job — it is sent on this tick instead of waiting for its own lease to run out.
#[tokio::test]
async fn job_claim_holds_the_job_when_its_reply_is_lost() {
    use integrator_lambda::aws::jobs::DynamoJobs;
    use integrator_lambda::jobs::deferred::{Job, JobState, JobStore};
    for fault in faults() {
        let s = setup("lost-job").await;
        let jobs = DynamoJobs::new(Table::new(&s.via, &s.table));
        let now = EpochMillis::now();
        let job = Job {
            id: format!("job-{}", fault.kind()),
            version: "v1".into(),
            state: JobState::Scheduled,
            due_at: now,
            body: "{}".into(),
            lease_until: None,
        };
        jobs.put(&job, EpochSeconds(EpochSeconds::now().0 + 3600))
            .await
            .expect("put");
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        let claimed = jobs
            .claim(&job.id, "v1", now, EpochMillis(now.0 + 60_000))
            .await
            .expect("claim");
        assert!(
            claimed,
            "{fault:?}: the claim's own first attempt holds the job"
        );
        // Another tick's claim within the lease is refused.
        let direct = DynamoJobs::new(Table::new(&s.direct, &s.table));
        assert!(
            !direct
                .claim(&job.id, "v1", now, EpochMillis(now.0 + 60_000))
                .await
                .expect("claim")
        );
    }
}

/// Rate-limit counter (`UpdateItem` with `ADD`): an admission whose reply was lost is counted
/// once — with a limit of 2, two calls are admitted and the third refused — and a release
/// whose reply was lost gives back one slot, not two.
#[tokio::test]
async fn rate_counter_counts_a_retried_admission_once() {
    use integrator_lambda::aws::limits::DynamoCounters;
    use integrator_lambda::jobs::limits::CounterStore;
    for fault in faults() {
        let s = setup("lost-rate").await;
        let counters = DynamoCounters::new(Table::new(&s.via, &s.table));
        let bucket = format!("rate#f#{}", fault.kind());
        let exp = EpochSeconds(EpochSeconds::now().0 + 3600);
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        assert_eq!(
            counters.acquire(&bucket, 2, exp).await.expect("acquire"),
            Some(1),
            "{fault:?}: the first admission is counted once"
        );
        assert_eq!(counters.acquire(&bucket, 2, exp).await.unwrap(), Some(2));
        assert_eq!(counters.acquire(&bucket, 2, exp).await.unwrap(), None);
        // Give one back with its reply lost: exactly one slot frees.
        s.proxy.inject(Rule::once("UpdateItem", fault.clone()));
        counters.release(&bucket).await.expect("release");
        assert_eq!(counters.acquire(&bucket, 2, exp).await.unwrap(), Some(2));
        assert_eq!(counters.acquire(&bucket, 2, exp).await.unwrap(), None);
    }
}

/// A check whose attempts were all applied but none answered in time fails — and leaves the
/// key as it found it. The page it belonged to is answered "dedup unavailable" and sent again;
/// the record must then be new, not skipped as seen because of this failed check's own write
/// (what `make soak` found: 4 of 4,000 records skipped).
#[tokio::test]
async fn a_failed_check_whose_attempts_were_applied_leaves_the_key_unmarked() {
    let s = setup("lost-failed-check").await;
    let key = DedupKey::from_caller("failed", "k");
    s.proxy.inject(Rule {
        times: 5,
        ..Rule::once("UpdateItem", Fault::LateReply(late()))
    });
    let out = s.dedup().check(&key).await;
    assert!(out.is_err(), "every attempt timed out: {out:?}");
    assert_eq!(
        s.direct_dedup().check(&key).await.expect("check"),
        Sighting::New,
        "the failed check's own write was undone"
    );
}

/// A page whose check is cut off by the call's time (`Dedup::for_call`: the checks end before
/// the deadline) while its write was applied and its reply is still on the way: the page fails
/// (the call answers an error and integrator.io retries it) and the cut-off check takes back
/// its own write, so the retry finds every record new. Fails on a store that leaves the
/// cut-off check's key marked (the retry drops that record as a duplicate).
#[tokio::test]
async fn a_check_cut_off_by_the_calls_time_leaves_the_key_unmarked() {
    let s = setup("lost-cut-off").await;
    let page: Vec<Value> = (0..4).map(|i| json!({"id": i})).collect();
    s.proxy
        .inject(Rule::once("UpdateItem", Fault::LateReply(late())).after(2));
    let mut dedup = s.dedup();
    dedup.checks_end_by = Some(std::time::Instant::now() + Duration::from_secs(1));
    let out = check_page(&dedup, "cut-off", &page, &["id".to_owned()], 1).await;
    assert!(out.is_err(), "the page's checks ran out of time: {out:?}");
    assert_eq!(s.proxy.faults().values().sum::<u64>(), 1, "injected");
    let retry = check_page(&s.direct_dedup(), "cut-off", &page, &["id".to_owned()], 1)
        .await
        .expect("page");
    assert_eq!(
        retry,
        vec![Sighting::New; 4],
        "every record is new on the retry"
    );
}

/// An incoming claim that fails after one of its attempts was applied (every reply late, the
/// retries run out): the endpoint answers 503 and the sender retries at once. The failed claim
/// deletes its own write, so the retry claims the key instead of being told "in progress"
/// until the lease ends. Fails on a store that leaves the failed claim's lease in place.
#[tokio::test]
async fn a_failed_claim_whose_attempts_were_applied_leaves_the_key_free() {
    let s = setup("lost-failed-claim").await;
    let key = DedupKey::from_caller("failed-claim", "k");
    s.proxy.inject(Rule {
        times: 5,
        ..Rule::once("UpdateItem", Fault::LateReply(late()))
    });
    let out = s.dedup().claim(&key, Duration::from_secs(60)).await;
    assert!(out.is_err(), "every attempt timed out: {out:?}");
    let retry = s
        .direct_dedup()
        .claim(&key, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(
        matches!(retry, Claim::Claimed(_)),
        "the sender's retry claims the key: {retry:?}"
    );
}

/// SQS `SendMessage` (the incoming endpoint's queue send, the worker's deferred sends): it has
/// no condition, so a send whose reply was lost or late is sent again by the SDK and a standard
/// queue keeps both copies. What must hold is that the caller sees one success (the endpoint
/// answers 200 once and does not release its dedup key for a 503) and that the copies are the
/// same message: the same body, so the same `dedupKey`, which the webhook function's
/// idempotency key runs once
/// (`worker::tests::a_webhook_message_runs_its_function_once_per_dedup_key`).
#[tokio::test]
async fn queue_send_copies_from_a_lost_reply_are_one_message() {
    use integration_tests::aws::{create_queue, drain_bodies};
    use integrator_lambda::aws::queue::SqsQueue;
    use integrator_lambda::store::queue::{OutMessage, QueueStore};
    for fault in faults() {
        let s = setup("lost-send").await;
        let url = create_queue(&s.direct, "lost-send").await;
        let queue = SqsQueue::new(&s.via, url.clone());
        s.proxy.inject(Rule::once("SendMessage", fault.clone()));
        let body = json!({"endpoint": "orders", "dedupKey": "evt-1", "event": {"id": 1}});
        let sent = queue
            .send(OutMessage {
                body: body.to_string(),
                ..OutMessage::default()
            })
            .await;
        assert!(
            sent.is_ok(),
            "{fault:?}: one success for the caller: {sent:?}"
        );
        assert_eq!(
            s.proxy.faults().values().sum::<u64>(),
            1,
            "{fault:?}: injected"
        );
        let copies = drain_bodies(&s.direct, &url).await;
        assert!(!copies.is_empty(), "{fault:?}: the message is queued");
        assert!(
            copies.iter().all(|c| c == &body),
            "{fault:?}: every copy is the same message: {copies:?}"
        );
    }
}
