#!/usr/bin/env python3
"""Operators' runbook commands for a deployed stack (docs/deploy-and-operate.md, "When an alarm fires").

  runbook.py dlq STACK                 what waits in each dead-letter queue of STACK
  runbook.py redrive STACK QUEUE       move QUEUE's messages back to their source queue
  runbook.py logs STACK FN [SINCE] [FOLLOW]   a function's log lines (FN: pre-map, worker…)

The stack's queues are found by name: CloudFormation names a queue it creates
`<stack>-<LogicalId>-<suffix>`, so `IncomingDeadLetterQueue` of stack `prod` is
`prod-IncomingDeadLetterQueue-1A2B3C`. A dead-letter queue is one that another queue of the
stack names in its `RedrivePolicy`. QUEUE is its logical id, or a prefix of it
(`work` = `WorkDeadLetterQueue`).

`dlq` peeks at up to 10 messages of each queue (visibility timeout 0: they stay where they are)
for the oldest one seen and one sample body, with secrets redacted. `redrive` asks SQS to move
the messages (StartMessageMoveTask, SQS's redrive API); where that API is not available (moto),
it moves them itself: each message is sent to the source queue, then deleted from the
dead-letter queue (a failure between the two leaves a copy in both, never none).

Credentials, region and endpoint come from the environment as for the AWS CLI
(AWS_ENDPOINT_URL for an emulator).
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timezone

import boto3
from botocore.exceptions import ClientError

SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|api[-_]?key|signature|credential|cookie|bearer",
    re.I,
)
SECRET_TEXT = re.compile(
    r"(?i)((?:bearer|token|secret|password|api[-_]?key|authorization)[\"']?\s*[:=]?\s*[\"']?)[^\s\"',}&]+"
)
REDACTED = "[REDACTED]"
SAMPLE_CHARS = 600


def redact(value):
    """`value` with every field whose name looks like a secret replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if SECRET_KEY.search(k) else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        # A JSON document inside a string (an envelope's options, an event body).
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.dumps(redact(json.loads(stripped)), separators=(",", ":"))
            except ValueError:
                pass
        return SECRET_TEXT.sub(lambda m: m.group(1) + REDACTED, value)
    return value


def redact_body(body: str) -> str:
    try:
        text = json.dumps(redact(json.loads(body)), separators=(",", ":"))
    except ValueError:
        text = redact(body)
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "…"


def stack_queues(sqs, stack: str) -> dict[str, str]:
    """Logical id → queue URL of the stack's queues."""
    pattern = re.compile(rf"^{re.escape(stack)}-([A-Za-z0-9]+)-[A-Za-z0-9]+$")
    out = {}
    kwargs = {"QueueNamePrefix": f"{stack}-", "MaxResults": 1000}
    while True:
        page = sqs.list_queues(**kwargs)
        for url in page.get("QueueUrls", []):
            m = pattern.match(url.rsplit("/", 1)[-1])
            if m:
                out[m.group(1)] = url
        if not page.get("NextToken"):
            return out
        kwargs["NextToken"] = page["NextToken"]


def attributes(sqs, url: str) -> dict:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def dead_letter_queues(sqs, stack: str) -> list[dict]:
    """Each DLQ of the stack: name, url, arn, attributes and its source queues."""
    queues = stack_queues(sqs, stack)
    attrs = {name: attributes(sqs, url) for name, url in queues.items()}
    by_arn = {a["QueueArn"]: name for name, a in attrs.items()}
    sources: dict[str, list[str]] = {}
    for name, a in attrs.items():
        policy = a.get("RedrivePolicy")
        if policy:
            target = json.loads(policy).get("deadLetterTargetArn")
            if target in by_arn:
                sources.setdefault(by_arn[target], []).append(name)
    return [
        {
            "name": name,
            "url": queues[name],
            "arn": attrs[name]["QueueArn"],
            "attributes": attrs[name],
            "sources": [(s, queues[s], attrs[s]["QueueArn"]) for s in sorted(srcs)],
        }
        for name, srcs in sorted(sources.items())
    ]


def iso(ms: str | int) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cmd_dlq(sqs, stack: str) -> int:
    dlqs = dead_letter_queues(sqs, stack)
    if not dlqs:
        print(f"no dead-letter queue found for stack {stack}")
        return 1
    for q in dlqs:
        a = q["attributes"]
        count = int(a.get("ApproximateNumberOfMessages", 0))
        in_flight = int(a.get("ApproximateNumberOfMessagesNotVisible", 0))
        print(f"{q['name']}  (source: {', '.join(s[0] for s in q['sources'])})")
        print(f"  messages: {count} waiting, {in_flight} in flight")
        if count == 0:
            continue
        peek = sqs.receive_message(
            QueueUrl=q["url"],
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
            AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        ).get("Messages", [])
        if not peek:
            continue
        oldest = min(peek, key=lambda m: int(m["Attributes"]["SentTimestamp"]))
        age = (time.time() * 1000 - int(oldest["Attributes"]["SentTimestamp"])) / 1000
        print(
            f"  oldest seen (sample of {len(peek)}): sent {iso(oldest['Attributes']['SentTimestamp'])}"
            f" ({age / 3600:.1f} h ago), received {oldest['Attributes'].get('ApproximateReceiveCount', '?')} times"
        )
        print(f"  sample body: {redact_body(oldest['Body'])}")
    return 0


def find_dlq(dlqs: list[dict], queue: str) -> dict | None:
    exact = [q for q in dlqs if q["name"].lower() == queue.lower()]
    if exact:
        return exact[0]
    prefixed = [q for q in dlqs if q["name"].lower().startswith(queue.lower())]
    return prefixed[0] if len(prefixed) == 1 else None


def move_by_hand(sqs, dlq: dict, source_url: str) -> int:
    """Send each message to the source queue, then delete it from the DLQ."""
    moved, empty = 0, 0
    while empty < 2:
        msgs = sqs.receive_message(
            QueueUrl=dlq["url"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not msgs:
            empty += 1
            continue
        empty = 0
        entries = []
        for i, m in enumerate(msgs):
            e = {"Id": str(i), "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                e["MessageAttributes"] = m["MessageAttributes"]
            entries.append(e)
        sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        done = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(msgs)
            if str(i) in ok
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq["url"], Entries=done)
        moved += len(done)
        for f in sent.get("Failed", []):
            print(f"  not moved (stays in the DLQ): {f.get('Code')} {f.get('Message', '')}")
    return moved


def cmd_redrive(sqs, stack: str, queue: str) -> int:
    dlqs = dead_letter_queues(sqs, stack)
    dlq = find_dlq(dlqs, queue)
    if dlq is None:
        names = ", ".join(q["name"] for q in dlqs) or "none"
        print(f"no single dead-letter queue {queue!r} in stack {stack} (there are: {names})")
        return 2
    if len(dlq["sources"]) != 1:
        print(f"{dlq['name']} has {len(dlq['sources'])} source queues; move by hand")
        return 2
    source, source_url, source_arn = dlq["sources"][0]
    try:
        task = sqs.start_message_move_task(SourceArn=dlq["arn"], DestinationArn=source_arn)
        print(f"SQS is moving {dlq['name']}'s messages back to {source} (task {task['TaskHandle']})")
        print("  progress: aws sqs list-message-move-tasks --source-arn " + dlq["arn"])
        return 0
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        # Only where the redrive API itself is missing (an emulator): move by hand.
        if code not in ("InvalidAction", "UnknownOperationException", "NotImplemented") and status not in (
            404,
            500,
            501,
        ):
            raise
        print(f"the redrive API is not available here ({code or status}): moving messages one by one")
    moved = move_by_hand(sqs, dlq, source_url)
    print(f"moved {moved} messages from {dlq['name']} back to {source}")
    return 0


def parse_since(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if not m:
        raise SystemExit(f"SINCE must look like 10m, 2h or 1d (got {text!r})")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def cmd_logs(logs, stack: str, fn: str, since: str, follow: bool) -> int:
    group = f"/aws/lambda/{stack}-{fn}"
    start = int((time.time() - parse_since(since)) * 1000)
    seen: set[str] = set()
    while True:
        kwargs = {"logGroupName": group, "startTime": start}
        try:
            while True:
                page = logs.filter_log_events(**kwargs)
                for ev in page.get("events", []):
                    if ev["eventId"] in seen:
                        continue
                    seen.add(ev["eventId"])
                    start = max(start, ev["timestamp"])
                    print(f"{iso(ev['timestamp'])} {ev['message'].rstrip()}", flush=True)
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                print(f"no log group {group} (FN is the function's short name: pre-map, worker…)")
                return 1
            raise
        if not follow:
            return 0
        time.sleep(2)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("dlq", "redrive", "logs"):
        print(__doc__)
        return 2
    cmd, stack = argv[0], argv[1]
    if cmd == "dlq":
        return cmd_dlq(boto3.client("sqs"), stack)
    if cmd == "redrive":
        if len(argv) < 3:
            print("usage: runbook.py redrive STACK QUEUE")
            return 2
        return cmd_redrive(boto3.client("sqs"), stack, argv[2])
    if len(argv) < 3:
        print("usage: runbook.py logs STACK FN [SINCE] [FOLLOW]")
        return 2
    since = argv[3] if len(argv) > 3 and argv[3] else "10m"
    follow = not (len(argv) > 4 and argv[4].lower() in ("0", "false", "no", "off"))
    return cmd_logs(boto3.client("logs"), stack, argv[2], since, follow)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
