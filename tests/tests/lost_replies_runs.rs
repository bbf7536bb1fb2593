//! Lost replies, run store: every write of [`DynamoRuns`] that decides an outcome, its first
//! attempt **applied** by the emulator but its reply lost (the connection reset after the
//! write) or late (held past the client's read timeout). The SDK retries the same request; the
//! retry meets the item its own first attempt wrote. Each test checks that the call answers
//! what a clean reply would have given, and that the run's counters counted the write once.
//!
//! Each fails on the store before commit 6a760485 (writes without their own token), where the
//! retry took its own first attempt for another writer's: `create_run` failed ("already
//! exists"), `begin_run`, `finish_stream`, `retry_stream`, `reopen_stream` answered `false`,
//! `claim_stream` answered "not claimable" and `finish_run` answered "not finished".

use aws_config::SdkConfig;
use integration_tests::aws::{create_table, moto_config, moto_endpoint, sdk_config_for};
use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integrator_lambda::aws::Table;
use integrator_lambda::aws::runs::DynamoRuns;
use integrator_lambda::jobs::runs::{
    Finish, Run, RunState, RunStore, Stream, StreamSpec, StreamState,
};
use integrator_lambda::time::EpochMillis;
use serde_json::json;
use std::time::Duration;

/// A reply held this long arrives after the client's read timeout.
fn late() -> Duration {
    integrator_lambda::aws::READ_TIMEOUT + Duration::from_secs(1)
}

fn faults() -> [Fault; 2] {
    [Fault::LostReply, Fault::LateReply(late())]
}

/// A table, a fault proxy in front of the emulator, a store through it and one direct.
struct Setup {
    via: DynamoRuns,
    direct: DynamoRuns,
    proxy: CountingProxy,
    _cfg: SdkConfig,
}

async fn setup(prefix: &str) -> Setup {
    let direct_cfg = moto_config().await;
    let table = create_table(&direct_cfg, prefix).await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let via_cfg = sdk_config_for(&proxy.endpoint()).await;
    Setup {
        via: DynamoRuns::new(Table::new(&via_cfg, &table)),
        direct: DynamoRuns::new(Table::new(&direct_cfg, &table)),
        proxy,
        _cfg: direct_cfg,
    }
}

fn run(id: &str) -> Run {
    Run {
        id: id.to_owned(),
        integration: "demo".into(),
        onboarding: true,
        params: json!({}),
        state: RunState::Pending,
        started_at: EpochMillis::now(),
        processed_at: None,
        error: None,
        pending: 0,
        streams_total: 0,
        errored_streams: 0,
        records: 0,
    }
}

fn stream(run_id: &str, id: &str) -> Stream {
    Stream {
        run_id: run_id.to_owned(),
        id: id.to_owned(),
        spec: StreamSpec::new("channel", json!({"id": id})),
        state: StreamState::Pending,
        attempt: 0,
        retries: 0,
        error: None,
        lease_until: EpochMillis(0),
        applied: None,
    }
}

impl Setup {
    /// A run begun with `roots` (directly, no fault), its streams as stored.
    async fn begun(&self, id: &str, roots: &[&str]) -> Vec<Stream> {
        self.direct.create_run(&run(id)).await.expect("create");
        let roots: Vec<Stream> = roots.iter().map(|r| stream(id, r)).collect();
        assert!(self.direct.begin_run(id, &roots).await.expect("begin"));
        self.direct.list_streams(id).await.expect("list")
    }
    /// The first of `roots` claimed directly.
    async fn claimed(&self, id: &str, roots: &[&str]) -> Stream {
        let streams = self.begun(id, roots).await;
        self.direct
            .claim_stream(id, &streams[0].id, 0, EpochMillis::now())
            .await
            .expect("claim")
            .expect("claimed")
    }
    async fn run(&self, id: &str) -> Run {
        self.direct.get_run(id).await.expect("get").expect("run")
    }
    async fn stream(&self, run_id: &str, id: &str) -> Stream {
        self.direct
            .list_streams(run_id)
            .await
            .expect("list")
            .into_iter()
            .find(|s| s.id == id)
            .expect("stream")
    }
    /// Inject `fault` on the next `op` request; the count of `op` requests so far.
    fn inject(&self, op: &str, fault: &Fault) -> u64 {
        self.proxy.inject(Rule::once(op, fault.clone()));
        self.proxy.count(op)
    }
    fn retried(&self, op: &str, fault: &Fault, before: u64) {
        assert!(
            self.proxy.count(op) >= before + 2,
            "{fault:?}: the SDK retried {op}: {:?}",
            self.proxy.counts()
        );
    }
}

/// `create_run` (`PutItem`): the run exists and the call succeeds — not "already exists" for
/// the only run there is.
#[tokio::test]
async fn create_run_succeeds_when_its_reply_is_lost() {
    let s = setup("lost-runs-create").await;
    for fault in faults() {
        let id = format!("create-{}", fault.kind());
        let before = s.inject("PutItem", &fault);
        s.via
            .create_run(&run(&id))
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: the run is created once: {e}"));
        s.retried("PutItem", &fault, before);
        assert_eq!(s.run(&id).await.state, RunState::Pending);
        // Another create of the same id is still refused.
        assert!(s.direct.create_run(&run(&id)).await.is_err());
    }
}

/// `begin_run` (`TransactWriteItems`): begun (true), its roots written and counted once.
#[tokio::test]
async fn begin_run_is_begun_once_when_its_reply_is_lost() {
    let s = setup("lost-runs-begin").await;
    for fault in faults() {
        let id = format!("begin-{}", fault.kind());
        s.direct.create_run(&run(&id)).await.expect("create");
        let roots = [stream(&id, "a"), stream(&id, "b")];
        let before = s.inject("TransactWriteItems", &fault);
        assert!(
            s.via.begin_run(&id, &roots).await.expect("begin"),
            "{fault:?}: the begin's own first attempt began the run"
        );
        s.retried("TransactWriteItems", &fault, before);
        let r = s.run(&id).await;
        assert_eq!(r.state, RunState::Processing);
        assert_eq!(
            (r.pending, r.streams_total),
            (2, 2),
            "{fault:?}: counted once"
        );
        assert_eq!(s.direct.list_streams(&id).await.unwrap().len(), 2);
        // A second begin (a redelivered start) is refused.
        assert!(!s.direct.begin_run(&id, &roots).await.unwrap());
    }
}

/// `claim_stream` (`UpdateItem`): the claim holds the stream (not "running, ignored" until its
/// own lease runs out), and another claim of the same attempt is refused.
#[tokio::test]
async fn claim_stream_holds_the_stream_when_its_reply_is_lost() {
    let s = setup("lost-runs-claim").await;
    for fault in faults() {
        let id = format!("claim-{}", fault.kind());
        s.begun(&id, &["a"]).await;
        let before = s.inject("UpdateItem", &fault);
        let claimed = s
            .via
            .claim_stream(&id, "a", 0, EpochMillis::now())
            .await
            .expect("claim");
        s.retried("UpdateItem", &fault, before);
        let claimed =
            claimed.unwrap_or_else(|| panic!("{fault:?}: the claim's own first attempt holds it"));
        assert_eq!(claimed.state, StreamState::Processing);
        assert!(
            s.direct
                .claim_stream(&id, "a", 0, EpochMillis::now())
                .await
                .unwrap()
                .is_none(),
            "{fault:?}: a second claim within the lease is refused"
        );
    }
}

/// `finish_stream` (`TransactWriteItems`): committed (true), its children written, and the
/// run's counters moved once (`pending` 1 → 0 + 2 children, `records` + 5).
#[tokio::test]
async fn finish_stream_commits_once_when_its_reply_is_lost() {
    let s = setup("lost-runs-finish").await;
    for fault in faults() {
        let id = format!("finish-{}", fault.kind());
        let claimed = s.claimed(&id, &["a"]).await;
        let finish = Finish::Processed {
            records: 5,
            children: vec![stream(&id, "a1"), stream(&id, "a2")],
        };
        let before = s.inject("TransactWriteItems", &fault);
        assert!(
            s.via
                .finish_stream(&claimed, &finish)
                .await
                .expect("finish"),
            "{fault:?}: the commit's own first attempt committed it"
        );
        s.retried("TransactWriteItems", &fault, before);
        let r = s.run(&id).await;
        assert_eq!(
            (r.pending, r.streams_total, r.records),
            (2, 3, 5),
            "{fault:?}: counted once"
        );
        assert_eq!(s.stream(&id, "a").await.state, StreamState::Processed);
        // A second commit of the same claim (a redelivery) is refused.
        assert!(!s.direct.finish_stream(&claimed, &finish).await.unwrap());
    }
}

/// `retry_stream` (`UpdateItem`): retried (true) once: `attempt` 0 → 1, `retries` 0 → 1.
#[tokio::test]
async fn retry_stream_retries_once_when_its_reply_is_lost() {
    let s = setup("lost-runs-retry").await;
    for fault in faults() {
        let id = format!("retry-{}", fault.kind());
        let claimed = s.claimed(&id, &["a"]).await;
        let before = s.inject("UpdateItem", &fault);
        assert!(
            s.via.retry_stream(&claimed, "boom").await.expect("retry"),
            "{fault:?}: the retry's own first attempt moved the stream"
        );
        s.retried("UpdateItem", &fault, before);
        let st = s.stream(&id, "a").await;
        assert_eq!(
            (st.state, st.attempt, st.retries),
            (StreamState::Pending, 1, 1),
            "{fault:?}: one retry"
        );
    }
}

/// `reopen_stream` (`TransactWriteItems`, with the run for an `error` stream): reopened (true)
/// once: `attempt` + 1, and the run's `pending` + 1, `errored_streams` − 1, once.
#[tokio::test]
async fn reopen_stream_reopens_once_when_its_reply_is_lost() {
    let s = setup("lost-runs-reopen").await;
    for fault in faults() {
        let id = format!("reopen-{}", fault.kind());
        let claimed = s.claimed(&id, &["a", "b"]).await;
        let errored = Finish::Errored {
            error: "out of retries".into(),
        };
        assert!(s.direct.finish_stream(&claimed, &errored).await.unwrap());
        let before = s.run(&id).await;
        assert_eq!((before.pending, before.errored_streams), (1, 1));
        let st = s.stream(&id, "a").await;
        assert_eq!(st.state, StreamState::Error);
        let before = s.inject("TransactWriteItems", &fault);
        assert!(
            s.via.reopen_stream(&st).await.expect("reopen"),
            "{fault:?}: the reopen's own first attempt reopened it"
        );
        s.retried("TransactWriteItems", &fault, before);
        let after = s.stream(&id, "a").await;
        assert_eq!((after.state, after.attempt), (StreamState::Pending, 1));
        let r = s.run(&id).await;
        assert_eq!(
            (r.pending, r.errored_streams),
            (2, 0),
            "{fault:?}: counted once"
        );
    }
}

/// `finish_run` (`UpdateItem`): the run's end is reported (its state), not "not finished".
#[tokio::test]
async fn finish_run_reports_the_end_when_its_reply_is_lost() {
    let s = setup("lost-runs-end").await;
    for fault in faults() {
        let id = format!("end-{}", fault.kind());
        let claimed = s.claimed(&id, &["a"]).await;
        let done = Finish::Processed {
            records: 1,
            children: vec![],
        };
        assert!(s.direct.finish_stream(&claimed, &done).await.unwrap());
        let before = s.inject("UpdateItem", &fault);
        assert_eq!(
            s.via
                .finish_run(&id, EpochMillis::now())
                .await
                .expect("finish run"),
            Some(RunState::Processed),
            "{fault:?}: the end's own first attempt ended the run"
        );
        s.retried("UpdateItem", &fault, before);
        assert_eq!(s.run(&id).await.state, RunState::Processed);
    }
}
