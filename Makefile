# integrator.io extension functions on AWS Lambda, in Rust.
#   make serve   build and serve every extension point on 127.0.0.1:$(PORT) (no AWS needed)
#   make test    formatting, clippy, all tests (conformance included), template lint
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PORT ?= 8080
# The local server's system token (dev only). Send it as `Authorization: Bearer $(TOKEN)`.
TOKEN ?= local-dev-token
VENV := .venv
TOOLS := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: call new-function new-function-check secret fixture help serve test fmt-check promises clippy lint-build build-bins cargo-test lint-template lint-workflows events-check \
        invoke build deploy tools clean bench soak fuzz run-integration continue-run run-status deny integrator-double \
        dlq redrive logs

help:
	@echo "make serve                 serve every extension point on 127.0.0.1:$(PORT) (token: $(TOKEN))"
	@echo "make integrator-double     a local integrator.io double on 127.0.0.1:$(DOUBLE_PORT) [FIXTURE=file]; then INTEGRATOR_API_URL=http://127.0.0.1:$(DOUBLE_PORT) make serve"
	@echo "make test                  fmt + clippy + tests + template lint (what CI runs)"
	@echo "make soak                  1,000 messages, 1,000 webhooks, 200 import and 200 dropDuplicates pages under faults and kills → docs/RELIABILITY.md"
	@echo "make fuzz                  every cargo-fuzz target, 10 M executions each (nightly + cargo-fuzz) → docs/RELIABILITY.md"
	@echo "make invoke FN=pre-map EVENT=events/pre-map/invoke.json   one Lambda invoke under aws-lambda-rie [CLIENT_CONTEXT=file]"
	@echo "make secret NAME=x [STACK=s] store a secret read from stdin (dev file locally; KMS + table of stack s)"
	@echo "make fixture FN=enrichRecords CASE=name [OPTIONS=file]   record a fixture from a run against the real API"
	@echo "make call FN=stampSource PAYLOAD=file.json  one call in process: log lines, time, answer"
	@echo "make new-function POINT=preMap NAME=myHook   add a function, its registration, fixture and test"
	@echo "make run-integration ID=paged-numbers [PARAMS='{\"total\":25}'] [ONBOARDING=true] [STACK=name]"
	@echo "make continue-run RUN=id | make run-status RUN=id   (local server, or STACK=name on AWS)"
	@echo "make dlq STACK=s            what waits in each dead-letter queue: count, oldest, a sample body (secrets redacted)"
	@echo "make redrive STACK=s QUEUE=work   move a dead-letter queue's messages back to their source queue"
	@echo "make logs STACK=s FN=pre-map [SINCE=10m] [FOLLOW=0]   a function's log lines (follows by default)"
	@echo "make build | deploy STAGE=dev|prod   all binaries in one cargo-lambda build (arm64; prod: fat LTO) | sam deploy --config-env STAGE"
	@echo "make bench                 release builds, criterion and load runs against the Node reference → docs/BENCHMARKS.md"
	@echo "make tools                 the git-ignored venv: moto, cfn-lint, cargo-lambda, aws-sam-cli (aws-lambda-rie)"
	@echo "make clean                 cargo clean and remove the venv"
	@echo "Parts of make test, each runnable alone:"
	@echo "  make fmt-check | clippy | lint-build | promises | deny | cargo-test | new-function-check"
	@echo "  make build-bins           every binary, as cargo build makes it (not needed by make test)"
	@echo "  make lint-template | lint-workflows | events-check"
	@echo "  (promises: every guarantee in the docs names a test that exists; events-check: events/ = gen-events.py)"

# Runs and streams: against `make serve` (URL, TOKEN), or the deployed worker with STACK=name.
run-integration:
	@test -n "$(ID)" || { echo "usage: make run-integration ID=<integration> [PARAMS=json] [ONBOARDING=true] [STACK=name]"; exit 2; }
	@URL=http://127.0.0.1:$(PORT) TOKEN=$(TOKEN) STACK=$(STACK) bash scripts/runs.sh start '$(ID)' '$(PARAMS)' '$(or $(ONBOARDING),false)'

continue-run:
	@test -n "$(RUN)" || { echo "usage: make continue-run RUN=<run id> [STACK=name]"; exit 2; }
	@URL=http://127.0.0.1:$(PORT) TOKEN=$(TOKEN) STACK=$(STACK) bash scripts/runs.sh continue '$(RUN)'

run-status:
	@test -n "$(RUN)" || { echo "usage: make run-status RUN=<run id> [STACK=name]"; exit 2; }
	@URL=http://127.0.0.1:$(PORT) TOKEN=$(TOKEN) STACK=$(STACK) bash scripts/runs.sh status '$(RUN)'

# Operators' runbook (docs/deploy-and-operate.md, "When an alarm fires"); AWS credentials and region from the
# environment, as for the AWS CLI.
dlq: $(TOOLS)
	@test -n "$(STACK)" || { echo "usage: make dlq STACK=<stack name>"; exit 2; }
	@$(VENV)/bin/python scripts/runbook.py dlq '$(STACK)'

redrive: $(TOOLS)
	@test -n "$(STACK)" -a -n "$(QUEUE)" || { echo "usage: make redrive STACK=<stack name> QUEUE=<IncomingDeadLetterQueue|WorkDeadLetterQueue|incoming|work>"; exit 2; }
	@$(VENV)/bin/python scripts/runbook.py redrive '$(STACK)' '$(QUEUE)'

SINCE ?= 10m
FOLLOW ?= 1
logs: $(TOOLS)
	@test -n "$(STACK)" || { echo "usage: make logs STACK=<stack name> FN=<pre-map|worker|…> [SINCE=10m] [FOLLOW=0]"; exit 2; }
	@$(VENV)/bin/python scripts/runbook.py logs '$(STACK)' '$(FN)' '$(SINCE)' '$(FOLLOW)'

serve:
	cargo build --bin serve
	PORT=$(PORT) INTEGRATOR_EXTENSION_SYSTEM_TOKEN=$(TOKEN) ./target/debug/serve

# The local integrator.io double for inv.integrator() (shared/src/outgoing/integrator/double.rs)
# on 127.0.0.1:$(DOUBLE_PORT), answering the integrator.io calls of FIXTURE (a fixture file);
# run `INTEGRATOR_API_URL=http://127.0.0.1:$(DOUBLE_PORT) make serve` next to it.
DOUBLE_PORT ?= 8090
FIXTURE ?=
integrator-double:
	cargo build --bin integrator-double
	./target/debug/integrator-double $(DOUBLE_PORT) $(FIXTURE)

# Python tools (cfn-lint, moto, cargo-lambda) live in a git-ignored venv.
$(TOOLS): scripts/tools.sh
	bash scripts/tools.sh
	@touch $@

tools: $(TOOLS)

# Every check in order (scripts/test.sh); cargo-deny builds in the background meanwhile.
test: $(TOOLS)
	@bash scripts/test.sh

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

# What `make test` runs instead of clippy: every target of the workspace built for the tests, its
# own crates compiled by clippy-driver with -D warnings (scripts/clippy-env.sh): the same lints
# as `make clippy`, and the dependencies compiled once.
lint-build:
	bash -c 'source scripts/clippy-env.sh && cargo test --workspace --all-targets --no-run'

# Every promise in README.md and docs/ names a test (`file.rs::name`), and every named test exists.
promises:
	python3 scripts/check-promises.py

# Dependency policy (deny.toml): licenses, duplicate versions and banned crates, sources.
deny:
	bash scripts/deny.sh

# Every binary, as `cargo build` makes it (make bench builds its own). `make test`
# does not need this: lint-build's `cargo test --no-run` already builds every binary the
# integration tests start, with the tests' feature set (the dev-dependencies turn on more
# features of a few crates, so a plain `cargo build` compiles the AWS SDK tree a second time).
build-bins:
	cargo build --workspace --bins

# AWS behaviour is tested against moto (a real-protocol emulator) on 127.0.0.1, started and
# stopped by the script; TEST_THREADS tests at once per test binary (default 4: they mostly
# wait), the soak beside the rest (scripts/cargo-test.sh).
export MOTO_PORT ?= 5055
cargo-test: $(TOOLS)
	bash scripts/cargo-test.sh

# Fuzzing (not part of `make test`, which replays the committed corpus and crash inputs).
fuzz:
	bash scripts/fuzz.sh

# The full soak (not part of `make test`, which runs a reduced one): 1,000 SQS messages,
# 1,000 webhooks, and 200 `upsertRecords` and 200 `dropDuplicates` pages through the DynamoDB
# dedup store, under injected faults (lost and late replies included) and kills; writes its
# figures and the "Lost replies" section into docs/RELIABILITY.md.
# (`cargo test --workspace --no-run` builds the binaries the soak starts, with the tests' features.)
soak: $(TOOLS)
	cargo test --workspace --no-run -q
	bash scripts/moto.sh start; trap 'bash scripts/moto.sh stop' EXIT; \
	  MOTO_ENDPOINT=http://127.0.0.1:$(MOTO_PORT) SOAK_MESSAGES=$(or $(SOAK_MESSAGES),1000) \
	  SOAK_REPORT=docs/RELIABILITY.md cargo test --workspace --test soak -- --nocapture

lint-template: $(TOOLS)
	bash scripts/lint-template.sh

# The CI/CD example (.github/workflows/): YAML + GitHub's workflow schema + our rules.
lint-workflows: $(TOOLS)
	$(VENV)/bin/python scripts/lint-workflows.py

events-check:
	@for f in $$(find events -name '*.json' | sort); do python3 -m json.tool "$$f" >/dev/null || { echo "bad JSON: $$f"; exit 1; }; done
	@python3 scripts/gen-events.py --check || { echo "events/ differs from scripts/gen-events.py: run python3 scripts/gen-events.py"; exit 1; }
	@echo "events: $$(find events -name '*.json' | wc -l) JSON files parse and match scripts/gen-events.py"

# One local Lambda invoke under AWS's own Runtime Interface Emulator (aws-lambda-rie from the
# aws-sam-cli wheel in .venv; no Docker), bound to 127.0.0.1; prints the log lines and the answer:
#   make invoke FN=pre-map EVENT=events/pre-map/invoke.json
#   make invoke FN=pre-map EVENT=events/pre-map/function-url.json
#   make invoke FN=pre-map EVENT=events/pre-map/options.json CLIENT_CONTEXT=events/pre-map/client-context.json
# (with Docker, the same event runs in SAM's container: sam build && sam local invoke PreMapFunction -e <event>)
FN ?= pre-map
EVENT ?= events/$(FN)/invoke.json
CLIENT_CONTEXT ?=
invoke: $(TOOLS)
	cargo build --bin $(FN)
	@bash scripts/invoke.sh '$(FN)' '$(EVENT)' '$(CLIENT_CONTEXT)'

# One call of any function, in process (the same dispatch path and local stores as `make
# serve`): its log lines (stderr), `Execution finished in N ms`, then `200 <answer>` or
# `422 <errors>` (stdout). PAYLOAD is the options JSON, or a fixture/envelope (its `options`).
#   make call FN=stampSource PAYLOAD=events/run/stamp-source.json
PAYLOAD ?=
call:
	@test -n "$(PAYLOAD)" || { echo "usage: make call FN=<function name> PAYLOAD=<options or fixture JSON file>"; exit 2; }
	@cargo build -q --bin call-function
	@./target/debug/call-function '$(FN)' '$(PAYLOAD)'

# Record a fixture: run one function once against the real API (secrets from the dev file, or
# KMS with EXTENSION_BACKEND=aws) and write functions/fixtures/<FN>/<CASE>.json, secrets and
# tokens redacted. Without OPTIONS the existing fixture's options are used (re-record).
#   make fixture FN=enrichRecords CASE=gold-customer OPTIONS=/tmp/options.json
CASE ?=
OPTIONS ?=
fixture:
	@test -n "$(CASE)" || { echo "usage: make fixture FN=<function name> CASE=<case> [OPTIONS=options.json]"; exit 2; }
	@cargo build -q --bin record-fixture
	@./target/debug/record-fixture '$(FN)' '$(CASE)' $(if $(OPTIONS),'$(OPTIONS)')

# Scaffold a function: make new-function POINT=preMap NAME=enrichOrders (scripts/new-function.py).
POINT ?=
new-function:
	@test -n "$(POINT)" -a -n "$(NAME)" || { echo "usage: make new-function POINT=<extension point> NAME=<functionName>"; exit 2; }
	python3 scripts/new-function.py '$(POINT)' '$(NAME)'

# The generator, checked: generate into a copy of the repository and build/test it there
# (sharing target/ so nothing is built cold).
new-function-check:
	bash scripts/check-new-function.sh

# Store a secret: the value is read from stdin, encrypted with KMS (encryption context: stack +
# name) and written to the table; it is never printed. Locally (no AWS) it goes to the git-ignored
# dev file secrets.dev.json.   printf %s "$$VALUE" | make secret NAME=crm-api-key
NAME ?=
# With STACK=<stack name>: into that deployed stack (its table and KMS key from the stack's
# outputs, with your AWS credentials; e.g. NAME=system-token after the first deploy).
secret:
	@test -n "$(NAME)" || { echo "usage: make secret NAME=<name> [STACK=<stack name>]  (value on stdin)"; exit 2; }
	@cargo build -q --bin set-secret
	@if [[ -n "$(STACK)" ]]; then \
	  out() { aws cloudformation describe-stacks --stack-name "$(STACK)" \
	    --query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	  EXTENSION_BACKEND=aws EXTENSION_STACK_NAME="$(STACK)" EXTENSION_TABLE="$$(out ExtensionTableName)" \
	    EXTENSION_KMS_KEY_ID="$$(out SecretsKeyArn)" ./target/debug/set-secret "$(NAME)"; \
	else ./target/debug/set-secret "$(NAME)"; fi

# One cargo-lambda build of every function binary (arm64), handed to SAM as a built template
# (.aws-sam/build/template.yaml, where `sam deploy` looks); `sam build` also still works.
# STAGE=dev (default): profile lambda-dev, no LTO (~4 min cold); STAGE=prod: release, fat LTO
# (~11 min cold, binaries ~2.6 MB smaller).
build: $(TOOLS)
	STAGE='$(STAGE)' bash scripts/build.sh

# Stages (samconfig.toml): make deploy STAGE=dev | STAGE=prod [PARAMS='AlarmEmail=... FunctionSecrets=...']
# (the first deploy of a stack without PARAMS: `sam deploy --guided --config-env dev`).
STAGE ?= dev
PARAMS ?=
SAM_DEPLOY_FLAGS ?=
deploy:
	@case '$(STAGE)' in dev|prod) ;; *) echo "STAGE must be dev or prod"; exit 2;; esac
	$(MAKE) build
	sam deploy --config-env '$(STAGE)' $(SAM_DEPLOY_FLAGS) $(if $(PARAMS),--parameter-overrides $(PARAMS))

clean:
	cargo clean
	rm -rf $(VENV) .tools

# Benchmarks (not part of `make test`; a few minutes): release builds in target/bench, criterion,
# wrk against our server and the Node reference stack, cold starts, sizes, AWS round trips at moto.
# Writes docs/BENCHMARKS.md and docs/bench-*.svg.
bench: $(TOOLS)
	bash scripts/bench.sh
