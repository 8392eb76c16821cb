# Two commands are all the set-up a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HLSJS  := chalicelib/landing/static/vendor/hls.min.js
STUDIOJS := chalicelib/studio/static/studio.js
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Every machine installs the same versions: the lock files pin each package with its hashes.
# requirements.lock: the runtime dependencies; requirements-dev.lock: runtime + dev + infra.
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
# checkov (the stack's scan in tests/infra) pins boto3, packaging and networkx below Reel's: it
# gets a venv of its own, from its own lock.
CHECKOV_VENV := .venv-checkov
CHECKOV_LOCK := requirements-checkov.lock
# Resolved for the project's machines whatever machine runs `make lock`: CPython 3.11 on glibc
# x86_64. Pins already in a lock are kept; `make lock UV_ARGS=--upgrade` takes the newest.
LOCK_ARGS = --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock" --quiet $(UV_ARGS)

.PHONY: demo test lint lock bench bench-realtime bench-ingest bench-studio player studio layer \
	synth deploy clean checkov

# The locked packages (setuptools among them, chalice needs it), then the project itself without
# dependencies or build isolation: nothing unlocked enters the venv.
$(VENV)/.base: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev: $(VENV)/.base $(DEV_LOCK) $(HLSJS) $(STUDIOJS)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	touch $@

## lock: regenerate both lock files from pyproject.toml (after changing a dependency)
lock: $(VENV)/.dev
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra infra $(LOCK_ARGS) -o $(DEV_LOCK)
	$(BIN)/uv pip compile pyproject.toml -c $(DEV_LOCK) $(LOCK_ARGS) -o $(LOCK)
	$(BIN)/uv pip compile requirements-checkov.in $(LOCK_ARGS) -o $(CHECKOV_LOCK)

## checkov: install checkov (tests/infra/test_checkov.py) into .venv-checkov
checkov: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: $(CHECKOV_LOCK)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes -r $(CHECKOV_LOCK)
	touch $@

# The browser's packages, pinned in package-lock.json and installed from npm. The app serves
# what is made of them from its static folders (git-ignored; no third-party CDN).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The landing page's HLS player: hls.js.
$(HLSJS): node_modules/.installed
	mkdir -p $(dir $@)
	cp node_modules/hls.js/dist/hls.min.js $@

# Reel Studio's page script: CodeMirror 6 and the JSON Schema completion, bundled by esbuild.
$(STUDIOJS): node_modules/.installed chalicelib/studio/web/main.js
	node_modules/.bin/esbuild chalicelib/studio/web/main.js --bundle --minify --format=iife \
		--target=es2020 --legal-comments=none --log-level=warning --outfile=$@

## player: install hls.js into chalicelib/landing/static/vendor/
player: $(HLSJS)

## studio: bundle Reel Studio's editor into chalicelib/studio/static/studio.js
studio: $(STUDIOJS)

## demo: render the demo campaign through the local API into out/demo, then serve it
demo: $(VENV)/.base $(HLSJS) $(STUDIOJS)
	$(BIN)/reel demo --out out/demo

# Browser tests drive Debian's chromium through Playwright (never `playwright install`).
$(VENV)/.browser: $(VENV)/.dev
	command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }
	touch $@

## test: lint, type-check and run the whole test suite
test: $(VENV)/.dev $(VENV)/.browser $(CHECKOV_VENV)/.installed lint
	$(BIN)/python -m pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy chalicelib

## bench: render benchmark (prints JSON)
bench: $(VENV)/.base
	$(BIN)/python bench/render_bench.py | tee bench/render.json

## bench-realtime: just-in-time HLS benchmark against `reel serve` (prints JSON)
bench-realtime: $(VENV)/.base $(HLSJS)
	$(BIN)/python bench/realtime_bench.py

## bench-studio: Reel Studio's frames, checks and recipient switches on the demo (prints JSON)
bench-studio: $(VENV)/.base $(STUDIOJS)
	$(BIN)/python bench/studio_bench.py

## bench-ingest: tracking ingest under load, POST /events on `reel serve` for 30 s (prints JSON)
bench-ingest: $(VENV)/.base $(HLSJS)
	$(BIN)/python bench/ingest_bench.py

## bench-realtime-aws: the same HLS benchmark on the emulated AWS stack (tests/lambdalike: Lambda
## containers frozen between invocations, moto), with invocations and billed time (prints JSON)
.PHONY: bench-realtime-aws
bench-realtime-aws: $(VENV)/.dev
	$(BIN)/python bench/realtime_aws_bench.py

## layer: the pinned ffmpeg as a Lambda layer zip (layers/ffmpeg/build/ffmpeg-layer.zip)
layer: $(VENV)/.base
	$(BIN)/python layers/ffmpeg/build_layer.py

## synth: the AWS stack's CloudFormation into infra/cdk.out, offline (no AWS account, no Docker)
synth: $(VENV)/.dev
	$(BIN)/python infra/app.py

## deploy: build the render image and deploy the stack (AWS credentials, `cdk bootstrap`, Docker)
deploy: $(VENV)/.dev
	@test -n "$(PUBLIC_KEY)" || { echo "usage: make deploy PUBLIC_KEY=cloudfront-public.pem [STAGE=dev]"; exit 1; }
	cd infra && npx --yes aws-cdk@2 deploy --app "$(abspath $(BIN))/python app.py" \
		-c stage=$(or $(STAGE),dev) -c public_key_file=$(abspath $(PUBLIC_KEY)) $(CDK_ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache layers/ffmpeg/build \
		node_modules chalicelib/landing/static/vendor $(STUDIOJS)

## cost: render + orchestration cost per 1,000 and 1,000,000 recipients, from the benchmarks'
## JSON (bench/render.json, bench/plan.json; dated defaults without them), the stack's settings
## and one dated price table (prints JSON and a table)
.PHONY: cost bench-plan
cost: $(VENV)/.dev
	$(BIN)/python bench/cost.py

## bench-plan: the batch's Plan step on a generated 1,000,000-row CSV (prints JSON, keeps it in
## bench/plan.json for `make cost`)
bench-plan: $(VENV)/.base
	$(BIN)/python bench/plan_bench.py --out bench/plan.json
