//! Section 5, AWS round trips: requests per operation counted at the emulator (`CountingProxy`).

use integration_tests::counting_proxy::CountingProxy;
use std::time::Duration;

pub(crate) async fn aws_round_trips() -> Result<Vec<(String, String)>, String> {
    use integration_tests::aws::Resources;
    use integration_tests::aws::{create_key, create_table, moto_config, sdk_config_for, unique};
    use integrator_lambda::aws::dedup::DynamoDedup;
    use integrator_lambda::aws::idempotency::DynamoIdempotency;
    use integrator_lambda::store::dedup::{Dedup, DedupKey};
    use integrator_lambda::store::idempotency::{Idempotency, IdempotencyKey};
    use integrator_lambda::store::secrets::{SecretStore, SecretString, Secrets};
    use integrator_lambda::time::EpochMillis;
    use std::sync::Arc;

    let moto = std::env::var("MOTO_ENDPOINT").map_err(|_| "MOTO_ENDPOINT is not set".to_owned())?;
    let cfg = moto_config().await;
    let proxy = CountingProxy::start(&moto)
        .await
        .map_err(|e| e.to_string())?;
    let counted = sdk_config_for(&proxy.endpoint()).await;
    let describe = |p: &CountingProxy| {
        let mut v: Vec<String> = p
            .counts()
            .into_iter()
            .map(|(k, n)| format!("{} × {n}", k.rsplit('.').next().unwrap_or(&k)))
            .collect();
        v.sort();
        format!("{} ({})", p.total(), v.join(", "))
    };
    let mut rows = Vec::new();

    let table = create_table(&cfg, "bench-dedup").await;
    let dedup = Dedup::new(Arc::new(DynamoDedup::new(
        integrator_lambda::aws::Table::new(&counted, &table),
    )));
    let key = DedupKey::from_values("bench", &[Some(&serde_json::json!("order-1"))]);
    proxy.reset();
    dedup.check(&key).await.map_err(|e| e.to_string())?;
    rows.push(("dedup check, new key".into(), describe(&proxy)));
    proxy.reset();
    dedup.check(&key).await.map_err(|e| e.to_string())?;
    rows.push(("dedup check, duplicate".into(), describe(&proxy)));

    let table = create_table(&cfg, "bench-idem").await;
    let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(
        integrator_lambda::aws::Table::new(&counted, &table),
    )));
    let key = IdempotencyKey::new("bench", &serde_json::json!({"order": 1}));
    let deadline = || EpochMillis::now().after(Duration::from_secs(30));
    proxy.reset();
    idem.once(&key, deadline(), || async {
        Ok::<_, String>("{\"done\":1}".to_owned())
    })
    .await
    .map_err(|e| format!("{e:?}"))?;
    rows.push(("idempotent execution, new".into(), describe(&proxy)));
    proxy.reset();
    idem.once(&key, deadline(), || async {
        Ok::<_, String>("not run".to_owned())
    })
    .await
    .map_err(|e| format!("{e:?}"))?;
    rows.push(("idempotent execution, replay".into(), describe(&proxy)));

    let table = create_table(&cfg, "bench-secrets").await;
    let kms = create_key(&cfg).await;
    let res = Resources {
        table,
        kms_key_id: kms,
        queue_url: None,
        work_queue_url: None,
        stack_name: unique("bench"),
    };
    res.kms(&cfg)
        .store("bench-secret", &SecretString::from("v4lue".to_owned()))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let store = Secrets::new(Arc::new(res.kms(&counted)));
    proxy.reset();
    store
        .get("bench-secret", None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    rows.push(("secret fetch, cold".into(), describe(&proxy)));
    proxy.reset();
    store
        .get("bench-secret", None)
        .await
        .map_err(|e| format!("{e:?}"))?;
    rows.push(("secret fetch, warm (cached)".into(), describe(&proxy)));

    // The worker: one SQS batch of 10 envelopes (idempotent deliveries by message id).
    {
        use integrator_lambda::dispatch::{Extension, Services};
        let table = create_table(&cfg, "bench-worker").await;
        let mut m = integrator_lambda::Module::new();
        m.raw("noop", |_inv, _o: serde_json::Value| async move {
            Ok(serde_json::json!({"ok": true}))
        });
        let services = Services::new().with_idempotency(Arc::new(Idempotency::new(Arc::new(
            DynamoIdempotency::new(integrator_lambda::aws::Table::new(&counted, &table)),
        ))));
        let ext = Extension::builder()
            .diy(m)
            .services(services)
            .build()
            .map_err(|e| e.to_string())?;
        let records: Vec<serde_json::Value> = (0..10)
            .map(|i| {
                serde_json::json!({
                    "messageId": format!("bench-{i}-{}", unique("m")),
                    "receiptHandle": "rh",
                    "body": serde_json::json!({"diy": true, "function": "noop", "options": {"i": i}}).to_string(),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        let event = serde_json::json!({ "Records": records });
        proxy.reset();
        let r = integrator_lambda::worker::handle_batch(&ext, event.clone(), "bench", None)
            .await
            .map_err(|e| e.to_string())?;
        if !r.batch_item_failures.is_empty() {
            return Err(format!("worker batch failed: {}", r.to_json()));
        }
        rows.push((
            "worker batch of 10, first delivery".into(),
            describe(&proxy),
        ));
        proxy.reset();
        integrator_lambda::worker::handle_batch(&ext, event, "bench", None)
            .await
            .map_err(|e| e.to_string())?;
        rows.push(("worker batch of 10, redelivered".into(), describe(&proxy)));
    }

    // Deferred jobs and rate limits.
    {
        use integrator_lambda::aws::jobs::DynamoJobs;
        use integrator_lambda::aws::limits::DynamoCounters;
        use integrator_lambda::aws::queue::SqsQueue;
        use integrator_lambda::jobs::deferred::{ScheduleRequest, Scheduler};
        use integrator_lambda::jobs::limits::{RateLimiter, parse_limits};
        use integrator_lambda::time::{ManualClock, SystemClock};
        let table = create_table(&cfg, "bench-jobs").await;
        let queue = integration_tests::aws::create_queue(&cfg, "bench-jobs").await;
        let clock = Arc::new(ManualClock::at(EpochMillis::now().0));
        let scheduler = Scheduler::new(
            Arc::new(DynamoJobs::new(integrator_lambda::aws::Table::new(
                &counted, &table,
            ))),
            Arc::new(SqsQueue::new(&counted, &queue)),
            clock.clone(),
        );
        let envelope = serde_json::json!({"diy": true, "function": "noop", "options": {}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let key = serde_json::json!({"order": 1});
        proxy.reset();
        scheduler
            .schedule(
                ScheduleRequest::new(envelope.clone(), Some(&key)).delay(Duration::from_secs(60)),
            )
            .await
            .map_err(|e| e.to_string())?;
        rows.push(("schedule, ≤ 15 min (SQS delay)".into(), describe(&proxy)));
        proxy.reset();
        scheduler
            .schedule(ScheduleRequest::new(envelope, Some(&key)).delay(Duration::from_secs(3600)))
            .await
            .map_err(|e| e.to_string())?;
        rows.push(("schedule, > 15 min (table)".into(), describe(&proxy)));
        clock.advance(Duration::from_secs(3600));
        proxy.reset();
        scheduler.tick().await.map_err(|e| e.to_string())?;
        rows.push(("tick moving 1 due job".into(), describe(&proxy)));
        proxy.reset();
        scheduler.tick().await.map_err(|e| e.to_string())?;
        rows.push(("tick, nothing due".into(), describe(&proxy)));
        let limiter = RateLimiter::new(
            Arc::new(DynamoCounters::new(integrator_lambda::aws::Table::new(
                &counted, &table,
            ))),
            Arc::new(SystemClock),
            parse_limits(r#"[{"function":"noop","limit":5,"interval":60}]"#)
                .map_err(|e| e.to_string())?,
        );
        proxy.reset();
        limiter
            .admit("noop", None)
            .await
            .map_err(|e| e.to_string())?;
        rows.push(("rate-limit admission".into(), describe(&proxy)));
    }
    Ok(rows)
}
