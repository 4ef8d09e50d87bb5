#!/usr/bin/env bash
# Make the signed offline bundle, on a connected machine, for a customer host with no internet.
#
#   scripts/offline-bundle.sh --signing-key KEY [options]
#
# It downloads the locked wheels (scripts/wheelhouse.sh), builds (or takes) the image, saves it with `docker save | zstd`, downloads the chosen models at
# pinned revisions (or copies them from a local directory), checks each model is complete, and writes
# bundle.json, SHA256SUMS and SHA256SUMS.minisig; then it verifies the bundle exactly as install.sh will.
# Safe to re-run: the bundle is assembled in OUT.partial and moved into place only when verified; hub
# downloads are kept in the cache directory and reused.
#
# Options:
#   --signing-key FILE     minisign secret key (or PKCS#8 PEM); password in $SOTTO_SIGNING_KEY_PASSWORD
#   --out DIR              the bundle directory (default: dist/sotto-<version>)
#   --models LIST          comma-separated model names from the catalogue below, or "none"
#                          (default: large-v3,large-v3-turbo,distil-large-v3,pyannote-speaker-diarization-community-1)
#   --models-from DIR      take each model from DIR/<name> instead of the hub (default --models: every
#                          directory in DIR; a name not in the catalogue is a pyannote pipeline when it
#                          has config.yaml, else a Whisper model)
#   --revision NAME=REV    pin or override a model's revision (repeatable)
#   --resolve-unpinned     for a model with no pinned revision, pin what the hub's main branch is now
#   --image-archive FILE   use this `docker save` archive (.tar or .tar.zst); no Docker needed
#   --no-build             save the existing local image instead of building it
#   --cache DIR            hub downloads (default: .bundle-cache)
#   --dry-run              print the plan and change nothing
# Environment: HF_TOKEN (the pyannote pipeline is gated on the hub), PYTHON (default: .venv/bin/python).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)

# name  kind  hub repository  revision ("-": not pinned yet; pass --revision or --resolve-unpinned)
CATALOG="\
large-v3 whisper Systran/faster-whisper-large-v3 edaa852ec7e145841d8ffdb056a99866b5f0a478
large-v3-turbo whisper mobiuslabsgmbh/faster-whisper-large-v3-turbo 0a363e9161cbc7ed1431c9597a8ceaf0c4f78fcf
distil-large-v3 whisper Systran/faster-distil-whisper-large-v3 -
small whisper Systran/faster-whisper-small -
medium whisper Systran/faster-whisper-medium -
pyannote-speaker-diarization-community-1 pyannote pyannote/speaker-diarization-community-1 3533c8cf8e369892e6b79ff1bf80f7b0286a54ee"
DEFAULT_MODELS=large-v3,large-v3-turbo,distil-large-v3,pyannote-speaker-diarization-community-1

die() { echo "offline-bundle: $*" >&2; exit 1; }
abspath() { realpath -m -- "$1"; }

SIGNING_KEY="" OUT="" MODELS="" MODELS_FROM="" IMAGE_ARCHIVE="" NO_BUILD=0 DRY_RUN=0 RESOLVE=0
CACHE="$REPO/.bundle-cache" MODELS_SET=0
declare -A REVISIONS=()
while (($#)); do
  case "$1" in
    --signing-key) SIGNING_KEY=$(abspath "${2:?}"); shift 2 ;;
    --out) OUT=$(abspath "${2:?}"); shift 2 ;;
    --models) MODELS=${2:?}; MODELS_SET=1; shift 2 ;;
    --models-from) MODELS_FROM=$(abspath "${2:?}"); shift 2 ;;
    --revision) [[ ${2:?} == *=* ]] || die "--revision takes NAME=REV"; REVISIONS[${2%%=*}]=${2#*=}; shift 2 ;;
    --resolve-unpinned) RESOLVE=1; shift ;;
    --image-archive) IMAGE_ARCHIVE=$(abspath "${2:?}"); shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --cache) CACHE=$(abspath "${2:?}"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

cd "$REPO"
PYTHON=${PYTHON:-}
[ -n "$PYTHON" ] || { [ -x .venv/bin/python ] && PYTHON=.venv/bin/python || PYTHON=python3; }
VERSION=$("$PYTHON" -c 'import appliance; print(appliance.__version__)')
IMAGE="sotto/appliance:$VERSION"
OUT=${OUT:-$REPO/dist/sotto-$VERSION}
ARCHIVE="images/appliance-$VERSION.tar.zst"
if ((!MODELS_SET)); then
  if [ -n "$MODELS_FROM" ]; then
    [ -d "$MODELS_FROM" ] || die "no directory $MODELS_FROM"
    MODELS=$(find "$MODELS_FROM" -mindepth 1 -maxdepth 1 \( -type d -o -type l \) ! -name '.*' -printf '%f\n' | sort | paste -sd, -)
  else
    MODELS=$DEFAULT_MODELS
  fi
fi
[ "$MODELS" = none ] && MODELS=""

# ---------------------------------------------------------------- the plan
plan=()
for name in ${MODELS//,/ }; do
  line=$(awk -v n="$name" '$1 == n' <<<"$CATALOG")
  if [ -z "$line" ]; then
    [ -n "$MODELS_FROM" ] || die "unknown model $name; known: $(awk '{printf "%s ", $1}' <<<"$CATALOG")"
    kind=whisper
    [ -f "$MODELS_FROM/$name/config.yaml" ] && kind=pyannote
    line="$name $kind local -"
  fi
  read -r _ kind repo pinned <<<"$line"
  revision=${REVISIONS[$name]:-$pinned}
  [ "$revision" = - ] && revision=""
  plan+=("$name $kind $repo ${revision:--}")
done
echo "Sotto $VERSION bundle -> $OUT"
if [ -n "$IMAGE_ARCHIVE" ]; then echo "  image: $IMAGE_ARCHIVE"
elif ((NO_BUILD)); then echo "  image: save the local $IMAGE"
else echo "  image: build $IMAGE from Dockerfile.cuda, then save it"; fi
for entry in "${plan[@]}"; do
  read -r name kind repo revision <<<"$entry"
  if [ -n "$MODELS_FROM" ]; then echo "  model: $name ($kind) from $MODELS_FROM/$name"
  else echo "  model: $name ($kind) from hub $repo @ $revision"; fi
done
((DRY_RUN)) && { echo "(dry run: nothing done)"; exit 0; }

[ -n "$SIGNING_KEY" ] || die "--signing-key is required"
[ -f "$SIGNING_KEY" ] || die "no signing key at $SIGNING_KEY"
command -v zstd >/dev/null || die "zstd is needed (apt install zstd)"

STAGE="$OUT.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE/images" "$STAGE/models" "$STAGE/tools" "$CACHE"
trap 'rm -rf "$STAGE"' EXIT

# ---------------------------------------------------------------- the image
if [ -n "$IMAGE_ARCHIVE" ]; then
  [ -f "$IMAGE_ARCHIVE" ] || die "no image archive at $IMAGE_ARCHIVE"
  if [ "$(head -c4 "$IMAGE_ARCHIVE" | od -An -tx1 | tr -d ' \n')" = 28b52ffd ]; then
    cp "$IMAGE_ARCHIVE" "$STAGE/$ARCHIVE"
  else
    zstd -q -T0 "$IMAGE_ARCHIVE" -o "$STAGE/$ARCHIVE"
  fi
else
  command -v docker >/dev/null || die "docker is needed (or pass --image-archive)"
  if ((!NO_BUILD)); then
    # Every wheel the image installs, downloaded here (hash-checked against the locks) into ./wheelhouse,
    # which the build mounts: the build itself reaches no package index. BuildKit is needed for that
    # mount; the engine's built-in Dockerfile frontend does it, so no frontend image is pulled.
    PYTHON="$PYTHON" scripts/wheelhouse.sh "$REPO/wheelhouse"
    DOCKER_BUILDKIT=1 docker build --platform linux/amd64 -f Dockerfile.cuda -t "$IMAGE" .
  fi
  platform=()
  docker save --help 2>/dev/null | grep -q -- --platform && platform=(--platform linux/amd64)
  docker save "${platform[@]}" "$IMAGE" | zstd -q -T0 -o "$STAGE/$ARCHIVE"
fi

# ---------------------------------------------------------------- the models
hub() {  # hub ACTION REPO REVISION [DEST]: the only network code, kept out of the appliance package
  HF_HUB_OFFLINE=0 HF_HUB_DISABLE_TELEMETRY=1 "$PYTHON" - "$@" <<'PY'
import os, sys
from huggingface_hub import HfApi, snapshot_download
action, repo, revision = sys.argv[1:4]
token = os.environ.get("HF_TOKEN") or None
if action == "resolve":
    print(HfApi().model_info(repo, revision=revision, token=token).sha)
else:
    snapshot_download(repo_id=repo, revision=revision, local_dir=sys.argv[4], token=token)
PY
}

specs=()
for entry in "${plan[@]}"; do
  read -r name kind repo revision <<<"$entry"
  [ "$revision" = - ] && revision=""
  if [ -n "$MODELS_FROM" ]; then
    src="$MODELS_FROM/$name"
    [ -d "$src" ] || die "no model directory $src"
    "$PYTHON" -m appliance.distribution.bundle check-model "$src" --kind "$kind" --name "$name" >/dev/null
    source="local"
    if [ -z "$revision" ]; then  # name the content: the same files always get the same revision
      revision="local-$("$PYTHON" -c 'import sys, hashlib; from pathlib import Path; from appliance.distribution.model_packs import describe_files
print(hashlib.sha256("".join(f"{f.sha256} {f.path}\n" for f in describe_files(Path(sys.argv[1]))).encode()).hexdigest()[:12])' "$src")"
    fi
  else
    if [ -z "$revision" ]; then
      ((RESOLVE)) || die "$name has no pinned revision: pass --revision $name=<commit> or --resolve-unpinned"
      revision=$(hub resolve "$repo" main)
      echo "  pinned $name to $repo@$revision (add it to the catalogue in this script)"
    fi
    if [ "$kind" = pyannote ] && [ -z "${HF_TOKEN:-}" ]; then
      die "$name is gated on the hub: accept its conditions there and set HF_TOKEN"
    fi
    src="$CACHE/$name@$revision"
    if ! "$PYTHON" -m appliance.distribution.bundle check-model "$src" --kind "$kind" --name "$name" >/dev/null 2>&1; then
      echo "  downloading $repo@$revision"
      hub download "$repo" "$revision" "$src"
    fi
    source="hub:$repo"
  fi
  dest="$STAGE/models/$name@$revision"
  cp -rL "$src" "$dest"
  # Hub bookkeeping (.cache/, .gitattributes) is not part of the model.
  find "$dest" -mindepth 1 -name '.*' -prune -exec rm -rf {} +
  "$PYTHON" -m appliance.distribution.bundle check-model "$dest" --kind "$kind" --name "$name"
  specs+=(--model "name=$name,kind=$kind,revision=$revision,source=$source")
done

# ---------------------------------------------------------------- the rest, then sign and verify
cp compose.yaml config.example.toml "$STAGE/"
cp scripts/install.sh "$STAGE/install.sh"
# The Node.js/TypeScript client as its npm package (sdk/typescript; `npm install ./sdk/sotto-client-*.tgz`).
"$PYTHON" -m appliance.distribution.bundle npm-pack sdk/typescript --out "$STAGE/sdk" >/dev/null
chmod +x "$STAGE/install.sh"
for module in minisign release_keys bundle_verify model_packs; do
  cp "appliance/distribution/$module.py" "$STAGE/tools/$module.py"
done
cat >"$STAGE/README.txt" <<EOF
Sotto appliance $VERSION: offline bundle

1. Optionally check the signature yourself with minisign and the public key Sotto gave you:
     minisign -Vm SHA256SUMS -P <Sotto release public key>
2. Install (as root, on the GPU host; needs python3, zstd, Docker with the NVIDIA Container Toolkit):
     sudo ./install.sh --dir /opt/sotto
   It verifies every file, loads the image, checks the NVIDIA driver and places the models.
3. Follow the steps it prints. The full guide: docs/operator-guide.md in the Sotto documentation.

sdk/ holds the Node.js/TypeScript client for the appliance's API (npm install ./sdk/sotto-client-*.tgz).
EOF

"$PYTHON" -m appliance.distribution.bundle finalize "$STAGE" --version "$VERSION" --image-ref "$IMAGE" \
  --image-archive "$ARCHIVE" --signing-key "$SIGNING_KEY" ${specs[@]+"${specs[@]}"}

rm -rf "$OUT"
mv "$STAGE" "$OUT"
trap - EXIT
echo "bundle ready: $OUT ($(du -sh "$OUT" | cut -f1))"
