#!/usr/bin/env bash
# Install or upgrade Sotto from this offline bundle, on the customer's GPU host (no internet needed).
#
#   sudo ./install.sh [--dir /opt/sotto] [options]
#
# 1. verifies SHA256SUMS.minisig against Sotto's release keys (with `minisign` too, when installed),
#    every file's SHA-256, that no file is unlisted, and the image archive's digests;
# 2. checks the NVIDIA driver against the bundle's minimum;
# 3. loads the image (`zstd -dc | docker load`) and checks its id against bundle.json;
# 4. places the models under DIR/models/.packs/<name>@<revision> and switches DIR/models/<name> to them;
# 5. puts compose.yaml and config.example.toml in DIR and prints the next steps.
# Safe to re-run: an image already loaded and models already in place are checked and kept.
#
# Options:
#   --dir DIR            where the appliance lives (default /opt/sotto)
#   --public-key FILE    trust this minisign public key instead of Sotto's release keys (your own builds)
#   --skip-docker        do not load the image (verification and models only; no Docker needed)
#   --skip-driver-check  do not check the NVIDIA driver version
#   --owner UID:GID      owner of DIR/models and DIR/transfer (default 10001:10001, the image's user)
#   --dry-run            verify, then print what would be done and change nothing
# Needs: python3 (3.8+, standard library only), zstd, and for the image Docker with the NVIDIA
# Container Toolkit.
set -euo pipefail

BUNDLE=$(cd "$(dirname "$0")" && pwd)
DIR=/opt/sotto PUBLIC_KEY="" SKIP_DOCKER=0 SKIP_DRIVER=0 DRY_RUN=0 OWNER=10001:10001
die() { echo "install: $*" >&2; exit 1; }
while (($#)); do
  case "$1" in
    --dir) DIR=$(realpath -m -- "${2:?}"); shift 2 ;;
    --public-key) PUBLIC_KEY=$(realpath -- "${2:?}"); shift 2 ;;
    --skip-docker) SKIP_DOCKER=1; shift ;;
    --skip-driver-check) SKIP_DRIVER=1; shift ;;
    --owner) OWNER=${2:?}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

PYTHON=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ inside the bundle: it would be an unlisted file
command -v "$PYTHON" >/dev/null || die "python3 is needed to verify the bundle"
VERIFY=("$PYTHON" "$BUNDLE/tools/bundle_verify.py")
KEYS=()
[ -n "$PUBLIC_KEY" ] && KEYS=(--public-key "$PUBLIC_KEY")

# ---------------------------------------------------------------- 1. verify
echo "== verifying the bundle"
if command -v minisign >/dev/null; then
  # An independent check with the host's own minisign, before any of the bundle's code is trusted.
  if [ -n "$PUBLIC_KEY" ]; then
    minisign -Vqm "$BUNDLE/SHA256SUMS" -p "$PUBLIC_KEY" || die "minisign: the signature of SHA256SUMS is not valid"
  else
    ok=0
    for key in $(grep -o '"RW[A-Za-z0-9+/=]*"' "$BUNDLE/tools/release_keys.py" | tr -d '"'); do
      minisign -Vqm "$BUNDLE/SHA256SUMS" -P "$key" 2>/dev/null && ok=1
    done
    ((ok)) || die "minisign: SHA256SUMS is not signed by a Sotto release key"
  fi
  echo "   minisign: signature valid"
fi
"${VERIFY[@]}" verify "$BUNDLE" ${KEYS[@]+"${KEYS[@]}"} || die "verification failed: do not use this bundle"

field() {  # field KEY: one value from the verified bundle.json
  "$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k] if d is not None else None
print("" if d is None else d)' "$BUNDLE/bundle.json" "$1"
}
VERSION=$(field version)
IMAGE=$(field image.ref)
ARCHIVE=$(field image.archive)
CONFIG_DIGEST=$(field image.config_digest)
MANIFEST_DIGEST=$(field image.manifest_digest)
MIN_DRIVER=$(field min_nvidia_driver)

# ---------------------------------------------------------------- 2. the NVIDIA driver
if ((SKIP_DRIVER)); then
  echo "== NVIDIA driver check skipped (the image needs $MIN_DRIVER or newer)"
else
  command -v nvidia-smi >/dev/null || die "nvidia-smi not found: install the NVIDIA driver ($MIN_DRIVER or newer) first"
  DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n1 | tr -d ' ')
  [ -n "$DRIVER" ] || die "nvidia-smi reports no GPU"
  lowest=$(printf '%s\n%s\n' "$MIN_DRIVER" "$DRIVER" | sort -V | head -n1)
  [ "$lowest" = "$MIN_DRIVER" ] || die "NVIDIA driver $DRIVER is older than $MIN_DRIVER, the minimum for this image; upgrade the driver"
  echo "== NVIDIA driver $DRIVER (minimum $MIN_DRIVER): ok"
fi

if ((DRY_RUN)); then
  echo "== dry run: would load $IMAGE from $ARCHIVE, place the models in $DIR/models, copy compose.yaml to $DIR"
  exit 0
fi

# ---------------------------------------------------------------- 3. the image
image_id() { docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true; }
if ((SKIP_DOCKER)); then
  echo "== image not loaded (--skip-docker)"
else
  command -v docker >/dev/null || die "docker is not installed"
  command -v zstd >/dev/null || die "zstd is needed to load the image (apt install zstd / dnf install zstd)"
  id=$(image_id)
  # The classic image store reports the config digest as the id, the containerd store the manifest digest.
  if [ -n "$id" ] && { [ "$id" = "$CONFIG_DIGEST" ] || [ "$id" = "$MANIFEST_DIGEST" ]; }; then
    echo "== image $IMAGE already loaded ($id)"
  else
    echo "== loading $IMAGE"
    zstd -dcq "$BUNDLE/$ARCHIVE" | docker load
    id=$(image_id)
    if [ "$id" != "$CONFIG_DIGEST" ] && [ "$id" != "$MANIFEST_DIGEST" ]; then
      die "the loaded image's id $id is neither $CONFIG_DIGEST nor $MANIFEST_DIGEST"
    fi
    echo "   image id $id: ok"
  fi
  docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q nvidia \
    || echo "   warning: Docker shows no nvidia runtime; install the NVIDIA Container Toolkit (see the operator guide)"
fi

# ---------------------------------------------------------------- 4. models, 5. compose files
echo "== placing models in $DIR/models"
mkdir -p "$DIR/models" "$DIR/transfer"
"${VERIFY[@]}" place-models "$BUNDLE" "$DIR/models" ${KEYS[@]+"${KEYS[@]}"}
if [ -f "$DIR/compose.yaml" ] && ! cmp -s "$BUNDLE/compose.yaml" "$DIR/compose.yaml"; then
  backup="$DIR/compose.yaml.bak-$(date -u +%Y%m%d%H%M%S)"
  cp "$DIR/compose.yaml" "$backup"
  echo "   your previous compose.yaml is kept as $backup"
fi
cp "$BUNDLE/compose.yaml" "$BUNDLE/config.example.toml" "$DIR/"
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$OWNER" "$DIR/models" "$DIR/transfer"  # the container's user imports packs and writes requests
fi

cat <<EOF

Sotto $VERSION is installed in $DIR. Next steps:
  cd $DIR
  docker compose run --rm admin doctor --selftest     # every model loads and transcribes, no network
  docker compose up -d                                # https://<this host>:8443
  docker compose logs appliance | grep -i setup       # the one-time setup code for https://<host>:8443/setup
Licence, TLS certificate, backups and model updates: see the operator guide.
EOF
