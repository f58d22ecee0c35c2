# Fulcrum: the two commands a new machine needs are `make run` and `make test`.
SWIFT_BUILD_FLAGS ?=
BIN := .build/debug

.PHONY: bootstrap build run test test-unit test-deploy test-integration test-fuzz check-generated generate clean

bootstrap:
	@bash scripts/bootstrap

build: bootstrap
	swift build $(SWIFT_BUILD_FLAGS)

# Installs what is missing, builds, starts the cluster with examples/models on this machine
# (balancer :7000, frontend gRPC :8001), sends a first prediction, and keeps serving until Ctrl-C.
run: build
	@bash scripts/run

# Every test: generated code is current, Swift unit tests, the deployment files' consistency,
# the integration suite that starts the real executables and drives them with tritonclient,
# then a short coverage-guided fuzzing run of every decoder that sees client bytes.
test: build check-generated test-unit test-deploy test-integration test-fuzz

check-generated:
	@bash scripts/generate-protos --check
	@bash scripts/generate-shaders --check
	@python3 scripts/generate-vulkan-loader --check

test-unit:
	swift test $(SWIFT_BUILD_FLAGS)

test-deploy:
	.venv/bin/python -m pytest tests/deploy -q

test-integration:
	FULCRUM_BIN_DIR=$(BIN) .venv/bin/python -m pytest tests/integration -q

# 40,000 libFuzzer runs per target with a fixed seed, so every machine explores the same inputs
# (scripts/fuzz builds the harness in .build/fuzz first; longer runs: scripts/fuzz --time N).
test-fuzz:
	bash scripts/fuzz --runs 40000 --seed 1

generate:
	bash scripts/generate-protos
	python3 scripts/generate-vulkan-loader

clean:
	rm -rf .build .build-tools
