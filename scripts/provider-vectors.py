#!/usr/bin/env python3
"""Signatures made by the senders' own published libraries, for the webhook auth tests.

Writes shared/src/incoming/auth/provider_vectors.json: fixed inputs signed by Stripe's
`stripe`, Standard Webhooks' `standardwebhooks` and Slack's `slack_sdk` (each library also
verifies its own signature here). The Rust test `provider_vectors.rs` checks the endpoint's
verifiers accept each one and refuse it tampered, so `make test` needs no Python.

Regenerate (any venv): pip install stripe standardwebhooks slack_sdk && python3 scripts/provider-vectors.py
"""

import datetime
import json
import pathlib

import slack_sdk
import standardwebhooks
import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks.webhooks import Webhook

OUT = pathlib.Path(__file__).resolve().parent.parent / "shared/src/incoming/auth/provider_vectors.json"
T = 1_767_225_600  # 2026-01-01T00:00:00Z

vectors = {}

# Stripe: the header its library builds (t=…,v1=…), verified by the same library.
secret = "whsec_provider_vector_stripe_secret_01"
body = '{"id":"evt_vector_1","object":"event","type":"invoice.paid"}'
v1 = stripe.WebhookSignature._compute_signature(f"{T}.{body}", secret)
header = f"t={T},v1={v1}"
stripe.WebhookSignature.verify_header(body, header, secret, tolerance=None)
vectors["stripe"] = {"library": f"stripe {stripe.VERSION}", "secret": secret, "timestamp": T,
                     "body": body, "header": header}

# Standard Webhooks: Webhook.sign, verified by Webhook.verify at its own time.
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
body = '{"type":"order.created","data":{"id":7}}'
wh = Webhook(secret)
sig = wh.sign("msg_vector_1", datetime.datetime.fromtimestamp(T, tz=datetime.timezone.utc), body)
vectors["standardWebhooks"] = {"library": "standardwebhooks", "secret": secret, "timestamp": T,
                               "id": "msg_vector_1", "body": body, "header": sig}

# Slack: SignatureVerifier.generate_signature, checked by is_valid at its own time.
secret = "slack_provider_vector_signing_secret"
body = "token=x&team_id=T1&command=%2Fvector&text=hello"
verifier = SignatureVerifier(secret)
sig = verifier.generate_signature(timestamp=str(T), body=body)
vectors["slack"] = {"library": f"slack_sdk {slack_sdk.version.__version__}", "secret": secret,
                    "timestamp": T, "body": body, "header": sig}

OUT.write_text(json.dumps(vectors, indent=2) + "\n")
print(f"wrote {OUT}")
