#!/usr/bin/env bash
# local-model-quality.sh — answer quality with a real local model, end to end.
#
# Starts the local model server (scripts/local-llm.sh, Qwen2.5-Coder-1.5B by
# default), builds Switchboard in release mode and runs `switchboard eval
# --answers` with the default configuration on the shared development sets:
#
#   * a fixed sample of mtrag (every 3rd case: 85 of 254; multi-turn, long
#     documents, answerable and unanswerable cases),
#   * a fixed sample of StackFAQ (every 12th question: 105 of 1,249).
#
# Prints one line per set (answerable declined, unanswerable answered, token
# F1 on answerable cases, answers citing a gold article, time per answer) and
# keeps the JSON reports and the answers' log in target/quality/.
#
# On a 2-core machine this takes tens of minutes (about 20–60 s a case for the
# 1.5B model, depending on how long the sources are). Run it on a quiet
# machine: the figures are only comparable between runs of the same model.
#
# Environment (all optional):
#   LOCAL_LLM_MODEL      model for scripts/local-llm.sh (default qwen1.5b)
#   QUALITY_EVAL_DIR     the development sets (default ../shared/eval beside the repository)
#   QUALITY_MTRAG_EVERY  take every n-th mtrag case (default 3: 85 of 254; 1 for all)
#   QUALITY_STACKFAQ_EVERY  take every n-th StackFAQ question (default 12)
#   QUALITY_OUT          output folder (default target/quality)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
MODEL="${LOCAL_LLM_MODEL:-qwen1.5b}"
EVAL_DIR="${QUALITY_EVAL_DIR:-$REPO_ROOT/../shared/eval}"
MTRAG_EVERY="${QUALITY_MTRAG_EVERY:-3}"
STACKFAQ_EVERY="${QUALITY_STACKFAQ_EVERY:-12}"
OUT="${QUALITY_OUT:-$REPO_ROOT/target/quality}"
PORT="${LOCAL_LLM_PORT:-8081}"

for f in "$EVAL_DIR/mtrag/cases.jsonl" "$EVAL_DIR/stackfaq/queries.jsonl"; do
    [[ -f "$f" ]] || { echo "quality: $f not found (set QUALITY_EVAL_DIR)" >&2; exit 1; }
done
mkdir -p "$OUT"

echo "quality: building switchboard (release)" >&2
cargo build --release --quiet --manifest-path "$REPO_ROOT/Cargo.toml" --bin switchboard
BIN="$REPO_ROOT/target/release/switchboard"

echo "quality: starting the local model ($MODEL)" >&2
LOCAL_LLM_MODEL="$MODEL" LOCAL_LLM_PORT="$PORT" "$SCRIPT_DIR/local-llm.sh" start >&2
trap 'LOCAL_LLM_PORT="$PORT" "$SCRIPT_DIR/local-llm.sh" stop >&2 || true' EXIT

awk -v n="$MTRAG_EVERY" '(NR - 1) % n == 0' "$EVAL_DIR/mtrag/cases.jsonl" > "$OUT/mtrag.jsonl"
awk -v n="$STACKFAQ_EVERY" '(NR - 1) % n == 0' "$EVAL_DIR/stackfaq/queries.jsonl" > "$OUT/stackfaq.jsonl"

# The default configuration, with this model; a folder without config.toml
# so nothing of the repository's own settings applies. The timeout is long:
# a slow CPU is not what is measured here.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"; LOCAL_LLM_PORT="$PORT" "$SCRIPT_DIR/local-llm.sh" stop >&2 || true' EXIT
run() {
    local name="$1" kb="$2"
    echo "quality: $name ($(wc -l < "$OUT/$name.jsonl") cases)" >&2
    (cd "$WORK" && \
        SWITCHBOARD_LLM__BASE_URL="http://127.0.0.1:$PORT/v1" \
        SWITCHBOARD_LLM__MODEL="$MODEL" \
        SWITCHBOARD_LLM__TIMEOUT_SECS=900 \
        OPENAI_API_KEY=local \
        RUST_LOG=switchboard::eval=debug \
        "$BIN" eval "$OUT/$name.jsonl" --kb "$kb" --answers --json \
        > "$OUT/$name.json" 2> "$OUT/$name.log")
}
run mtrag "$EVAL_DIR/mtrag/kb"
run stackfaq "$EVAL_DIR/stackfaq/kb"

commit="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "quality: $(date -u +%Y-%m-%d) commit $commit model $MODEL"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
def fmt(v, p=3):
    return "n/a" if v is None else f"{v:.{p}f}"
print("| set | cases | answerable declined | unanswerable answered | token F1 (answerable) | gold cited | answer p50 / p95 s |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for name in ("mtrag", "stackfaq"):
    r = json.load(open(f"{out}/{name}.json"))
    a = r.get("answers") or {}
    p50, p95 = a.get("answer_p50_ms"), a.get("answer_p95_ms")
    times = "n/a" if p50 is None else f"{p50/1000:.1f} / {p95/1000:.1f}"
    print(f"| {name} | {r['cases']} | {fmt(a.get('answerable_declined'))} | {fmt(a.get('unanswerable_answered'))} | "
          f"{fmt(a.get('token_f1'))} | {fmt(a.get('cite_gold_rate'))} | {times} |")
PY
