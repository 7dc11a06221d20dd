# Shared by scripts/local-llm.sh and scripts/local-embed.sh: a local
# OpenAI-compatible helper server run from a Python virtual environment,
# in the foreground (serve) or in the background (start/stop/status, with a
# pid file and a log per port).
#
# The sourcing script sets TOOL (its name, e.g. local-llm), SERVED_NAME (the
# model id served), SERVER_PY and SERVER_ARGS, VENV_PY, CACHE_DIR, PID_FILE,
# LOG_FILE, BASE_URL, PORT and START_TIMEOUT, and defines ensure_venv,
# ensure_model, print_usage_info and cmd_fetch.

log() { echo "$TOOL: $*" >&2; }
die() { echo "$TOOL: error: $*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    "$VENV_PY" - "$1" <<'EOF'
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
EOF
  fi
}

# Size and mtime of a file, used to remember that it was already verified.
file_stamp() { stat -c '%s %Y' "$1"; }

# Run pip non-interactively (callers add -q; errors are still printed).
pip_q() { "$@" --disable-pip-version-check --no-input; }

# 0 if GET /v1/models answers with HTTP 200 (python, so curl is not required).
models_ok() {
  "$VENV_PY" - "$BASE_URL/models" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# PID of our background server, if it is alive and really is our helper.
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "$(basename "$SERVER_PY")" || return 1
  echo "$pid"
}

cmd_serve() {
  ensure_venv
  ensure_model
  if models_ok; then
    die "something already answers on $BASE_URL (a server from 'start'? run 'scripts/$TOOL.sh stop')"
  fi
  log "serving $SERVED_NAME on $BASE_URL (Ctrl-C to stop)"
  exec "$VENV_PY" "$SERVER_PY" "${SERVER_ARGS[@]}"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    print_usage_info
    return 0
  fi
  ensure_venv
  ensure_model
  if models_ok; then
    die "port $PORT is taken: something not started by this script answers on $BASE_URL"
  fi
  mkdir -p "$CACHE_DIR"
  log "starting $SERVED_NAME on $BASE_URL (log: $LOG_FILE)"
  # setsid + nohup: the server survives the shell (and CI step) that started it.
  local detach=(nohup)
  command -v setsid >/dev/null 2>&1 && detach=(setsid nohup)
  "${detach[@]}" "$VENV_PY" "$SERVER_PY" "${SERVER_ARGS[@]}" > "$LOG_FILE" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PID_FILE"

  local waited=0
  until models_ok; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log "the server exited during startup; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      exit 1
    fi
    if (( waited >= START_TIMEOUT * 2 )); then
      log "no answer from $BASE_URL/models after ${START_TIMEOUT}s; last lines of $LOG_FILE:"
      tail -n 20 "$LOG_FILE" >&2 || true
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      exit 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  log "up after ~$((waited / 2))s (pid $pid)"
  print_usage_info
}

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    log "not running (no live server for port $PORT)"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 10s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    log "running (pid $pid) on $BASE_URL"
    print_usage_info
  else
    log "not running"
    return 1
  fi
}

# Runs the command named by $1 (default serve). The sourcing script's own
# extra commands follow after the command, each defined as cmd_<name>.
dispatch() {
  local command="${1:-serve}"
  shift || true
  local extra=("$@")
  case "$command" in
    serve | start | stop | status | fetch) "cmd_$command" ;;
    -h | --help | help) sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
    *)
      local e
      for e in "${extra[@]}"; do
        if [[ "$e" == "$command" ]]; then
          "cmd_$command"
          return
        fi
      done
      die "unknown command '$command' (use serve, start, stop, status, fetch${extra[*]:+ or ${extra[*]}}; --help for details)"
      ;;
  esac
}
