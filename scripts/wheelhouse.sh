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
# pip does not widen a manylinux_2_Y tag to the older ones a glibc 2.35 system also runs: name them all.
platforms=()
for minor in $(seq 35 -1 5); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
for lock in requirements.lock requirements-sbom.lock; do
  # The markers in the universal lock are read for
  # CPython 3.11 on Linux, so the Windows-only and other-Python entries are skipped.
  "$PYTHON" -m pip download --disable-pip-version-check --quiet --require-hashes --no-deps \
    --only-binary=:all: "${platforms[@]}" --implementation cp --python-version 3.11 --abi cp311 \
    --dest "$DEST" -r "$REPO/$lock"
done
