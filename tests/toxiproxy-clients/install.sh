#!/usr/bin/env bash
# Installs the real Toxiproxy clients that delegate/tests/it/toxiproxy_server.rs drives against
# `faultline-delegate toxiproxy`: the PyPI packages of requirements.txt (toxiproxy-python,
# chaostoolkit, chaostoolkit-toxiproxy; chaostoolkit-kubernetes, whose chaosk8s the `chaos
# validate` of experiment/tests/chaostoolkit_kubernetes.rs imports; junitparser, which
# tests/tests/e2e/cli.rs reads `faultline run --junit` reports with) into .venv here, and the npm
# packages of package-lock.json (toxiproxy-node-client) into node_modules. Needs python3 with venv
# and npm; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
npm ci --no-audit --no-fund
