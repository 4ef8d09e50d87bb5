#!/usr/bin/env bash
# Download every wheel the image installs into a wheelhouse directory, on a connected machine, so that
# `docker build` needs no network: Dockerfile.cuda installs with `pip install --no-index --find-links`
# from it, and pip still checks every file against the SHA-256 in the locks.
#
#   scripts/wheelhouse.sh [DIR]      (default: wheelhouse/ in the repository, which the build context holds)
#
# Wheels only, for the image's platform (Linux x86_64, glibc 2.35 of the CUDA base's Ubuntu 22.04, CPython
# 3.11), whatever machine this runs on. Safe to re-run: pip skips a wheel already in DIR whose hash matches.
# Environment: PYTHON (default: .venv/bin/python, else python3), a pip that can reach the package index.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=$(realpath -m -- "${1:-$REPO/wheelhouse}")
PYTHON=${PYTHON:-}
[ -n "$PYTHON" ] || { [ -x "$REPO/.venv/bin/python" ] && PYTHON=$REPO/.venv/bin/python || PYTHON=python3; }
mkdir -p "$DEST"
# Done already for exactly these locks: pip would only ask the index again and hash 4 GB (the build's
# pip checks every file against the lock's hashes in any case).
stamp=$(cat "$REPO/requirements.lock" "$REPO/requirements-sbom.lock" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$DEST/.locks-sha256" 2>/dev/null)" = "$stamp" ]; then
  echo "wheelhouse: $DEST is complete for these locks"
  exit 0
fi
# pip does not widen a manylinux_2_Y tag to the older ones a glibc 2.35 system also runs: name them all.
platforms=()
for minor in $(seq 35 -1 5); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
for lock in requirements.lock requirements-sbom.lock; do
  # The universal lock's markers are read for CPython 3.11 on Linux: Windows-only entries are skipped.
  "$PYTHON" -m pip download --disable-pip-version-check --quiet --require-hashes --no-deps \
    --only-binary=:all: "${platforms[@]}" --implementation cp --python-version 3.11 --abi cp311 \
    --dest "$DEST" -r "$REPO/$lock"
done
echo "$stamp" >"$DEST/.locks-sha256"
