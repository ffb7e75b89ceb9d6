# Beskar7 — common tasks. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
NEXTEST_PROFILE ?= default
PYTEST := .venv/bin/pytest
KUBECONFIG_OUT ?= /tmp/beskar7-sim.kubeconfig
LISTEN ?= 127.0.0.1:6443
HOSTS ?= 5

.PHONY: help build test test-rust test-python venv lint fmt apiserver demo bench-apiserver crds clean

help:
	@echo "make demo       the end-to-end demo: $(HOSTS) simulated servers provisioned by the real operator (HOSTS=N)"
	@echo "make apiserver  run the simulated Kubernetes API server (kubeconfig: $(KUBECONFIG_OUT))"
	@echo "make test       the whole test suite: Rust (nextest) and the Python-client conformance tests"
	@echo "make lint       cargo fmt --check and clippy -D warnings"
	@echo "make venv       the Python venv the tests need (.venv)"
	@echo "make crds       regenerate crds/ from the API types in src/api"
	@echo "make bench-apiserver  10,000 objects, 20 watchers: create, list and watch fan-out figures"
	@echo "make agent-static  the agent as one static binary (glibc, crt-static)"
	@echo "make agent-image   vmlinuz + initrd.img with the agent as /init (Debian kernel)"
	@echo "make agent-lab     boots that image in QEMU: Image, Kexec and cleaning (manual, ~2 min)"

build:
	$(CARGO) build --workspace --locked

# The Rust suite builds the beskar7-sim binary the Python suite runs against.
test: venv test-rust test-python

test-rust:
	$(CARGO) nextest run --workspace --locked --profile $(NEXTEST_PROFILE)

# Helm keeps its releases in Secrets (its default driver, which sends protobuf) against the sim.
test-python: venv
	$(PYTEST) -q sim/tests/python

venv:
	.ci/python-venv.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

apiserver:
	$(CARGO) run --locked -p beskar7-sim -- apiserver --listen $(LISTEN) --kubeconfig $(KUBECONFIG_OUT) \
		--crds crds --crds ../shared/fixtures/capi-crds --crds ../shared/fixtures/cert-manager-crds

# The demo runs the beskar7 binary next to beskar7-sim as a child process: build both first.
demo:
	$(CARGO) build --locked -p beskar7 -p beskar7-sim
	$(CARGO) run --locked -q -p beskar7-sim -- demo --hosts $(HOSTS)

# A benchmark, not a test: figures go into notes and docs, never into assertions.
bench-apiserver:
	$(CARGO) run --locked --release -p beskar7-sim -- bench-apiserver --objects 10000 --watchers 20

# The CRDs in crds/ are generated from src/api; a test fails when they drift.
crds:
	$(CARGO) run --locked -q -p beskar7 -- crds --out-dir crds

clean:
	$(CARGO) clean
	rm -rf .venv

# ---- beskar7-agent (issue 6): the static agent and the inspection image ---------------------
# agent-static: target/x86_64-unknown-linux-gnu/release/beskar7-agent, glibc linked statically.
# agent-image:  $(AGENT_IMAGE_OUT)/vmlinuz + initrd.img from Debian's kernel package, the agent
#               as /init (users serve both at their inspectionImageURL). Needs apt lists, dpkg-deb,
#               kmod (depmod), cpio, xz-utils, file; root only for /dev/console in the archive.
AGENT_IMAGE_OUT ?= target/agent-image
# agent-lab:    boots that image three times in QEMU/TCG (Image handoff, Kexec handoff, the kexec'd
#               cleaning boot) against a scripted operator; manual, ~2 min, needs qemu-system-x86.
.PHONY: agent-static agent-image agent-lab
agent-static:
	agent/image/build-static.sh
agent-image:
	OUT=$(AGENT_IMAGE_OUT) agent/image/build-image.sh
agent-lab:
	agent/image/lab/run-lab.sh $(AGENT_IMAGE_OUT)
# ---- end beskar7-agent ----------------------------------------------------------------------
