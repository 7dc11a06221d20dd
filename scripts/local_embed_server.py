#!/usr/bin/env python3
"""Serve all-MiniLM-L6-v2 sentence embeddings over an OpenAI-compatible HTTP API.

Started by scripts/local-embed.sh inside the shared virtual environment
(.venv-llm, which needs only `numpy`, `safetensors` and `tokenizers`). No
torch: the BERT forward pass (6 layers, 384 wide, 12 heads) is written in
numpy below, and the HTTP side is the standard library. It can be run by hand:

    .venv-llm/bin/python scripts/local_embed_server.py --model-dir .cache/llm/all-MiniLM-L6-v2

Endpoints (the same under /v1/... and without the /v1 prefix):
  POST /v1/embeddings   {"model": "minilm", "input": "text" | ["t1", ...],
                         "encoding_format": "float" | "base64"}
  GET  /v1/models       lists the one model ("minilm")
  GET  /health          {"status": "ok"}

--selftest embeds a few sentence pairs, prints their cosine similarities and
fails unless they match known values for this model; it starts no server.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Model ids accepted in requests; the first is the one reported.
DEFAULT_MODEL_ID = "minilm"
ALIASES = ("all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
MAX_BODY_BYTES = 32 << 20  # 256 inputs of ~100 KiB each is far beyond what is useful


# ---------------------------------------------------------------------------
# The model: tokenizer + BERT encoder + mean pooling + L2 normalisation
# ---------------------------------------------------------------------------
class MiniLM:
    """all-MiniLM-L6-v2 as sentence-transformers runs it, in numpy (float32)."""

    ROWS = int(os.environ.get("LOCAL_EMBED_ROWS", "128"))  # token rows per FFN slice

    def __init__(self, model_dir: str, max_tokens: int = 256, batch: int = 32,
                 workers: int = 1):
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.np = np
        with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = self.hidden // self.heads
        self.layers = cfg["num_hidden_layers"]
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {cfg.get('hidden_act')!r}")
        self.max_tokens = min(max_tokens, cfg["max_position_embeddings"])
        self.batch = max(1, batch)
        # Sub-batches run on this many threads at once (numpy releases the GIL
        # in BLAS and in element-wise loops), each with single-threaded BLAS.
        self.workers = max(1, workers)
        self.pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="embed")

        tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        # Trap: this tokenizer.json ships with truncation at 128 tokens AND fixed
        # padding to 128 switched on. sentence-transformers truncates at 256
        # (sentence_bert_config.json) and pads per batch; do the same.
        tok.no_padding()
        tok.enable_truncation(max_length=self.max_tokens)
        self.tokenizer = tok

        w = load_file(os.path.join(model_dir, "model.safetensors"))
        # Weight names are plain BertModel ones; tolerate the "bert." and
        # "0.auto_model." prefixes of other exports of the same model.
        for prefix in ("bert.", "0.auto_model."):
            if any(k.startswith(prefix + "embeddings.") for k in w):
                w = {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}
                break

        def get(name):
            try:
                return np.ascontiguousarray(w[name], dtype=np.float32)
            except KeyError:
                raise KeyError(f"{name} missing from model.safetensors") from None

        self.word = get("embeddings.word_embeddings.weight")
        self.pos = get("embeddings.position_embeddings.weight")
        self.type = get("embeddings.token_type_embeddings.weight")
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.blocks = []
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            # Q, K and V fused into one (hidden, 3*hidden) matrix, pre-transposed
            # so that every projection is a single x @ W (one BLAS call).
            qkv_w = np.concatenate(
                [get(p + f"attention.self.{n}.weight") for n in ("query", "key", "value")]
            ).T.copy()
            qkv_b = np.concatenate(
                [get(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
            )
            self.blocks.append(
                dict(
                    qkv_w=qkv_w,
                    qkv_b=qkv_b,
                    ao_w=get(p + "attention.output.dense.weight").T.copy(),
                    ao_b=get(p + "attention.output.dense.bias"),
                    ln1=(get(p + "attention.output.LayerNorm.weight"),
                         get(p + "attention.output.LayerNorm.bias")),
                    in_w=get(p + "intermediate.dense.weight").T.copy(),
                    in_b=get(p + "intermediate.dense.bias"),
                    out_w=get(p + "output.dense.weight").T.copy(),
                    out_b=get(p + "output.dense.bias"),
                    ln2=(get(p + "output.LayerNorm.weight"), get(p + "output.LayerNorm.bias")),
                )
            )
        self.dim = self.hidden
        # One request at a time: its sub-batches already use every worker;
        # concurrent requests would only fight over the cores.
        self.lock = threading.Lock()

    # -- building blocks ----------------------------------------------------
    def _layer_norm(self, x, gb):
        np = self.np
        mean = x.mean(axis=-1, keepdims=True)
        x = x - mean
        var = np.mean(np.square(x), axis=-1, keepdims=True)
        x *= 1.0 / np.sqrt(var + self.eps)
        x *= gb[0]
        x += gb[1]
        return x

    def _gelu_(self, x):
        """Exact (erf) GELU, in place. numpy has no erf, so erfc comes from
        Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 noise).
        gelu(x) = x * Phi(x), Phi(x) = 0.5 + copysign(0.5 - erfc(|x|/sqrt2)/2, x)."""
        np = self.np
        z = np.abs(x)
        z *= np.float32(0.7071067811865476)
        t = z * np.float32(0.3275911)
        t += 1.0
        np.reciprocal(t, out=t)
        p = t * np.float32(0.5 * 1.061405429)  # the 1/2 of erfc/2 folded into the coefficients
        p += np.float32(0.5 * -1.453152027)
        p *= t
        p += np.float32(0.5 * 1.421413741)
        p *= t
        p += np.float32(0.5 * -0.284496736)
        p *= t
        p += np.float32(0.5 * 0.254829592)
        p *= t
        np.square(z, out=z)
        np.negative(z, out=z)
        np.exp(z, out=z)
        p *= z  # p = erfc(|x|/sqrt2) / 2
        np.subtract(np.float32(0.5), p, out=p)
        np.copysign(p, x, out=p)
        p += np.float32(0.5)  # p = Phi(x)
        x *= p
        return x

    def _forward(self, ids, mask):
        """ids, mask: (B, T) int arrays -> (B, hidden) unit vectors."""
        np = self.np
        B, T = ids.shape
        H, nh, hd = self.hidden, self.heads, self.head_dim
        # Token type is 0 everywhere for single sentences.
        x = self.word[ids]
        x += self.pos[:T]
        x += self.type[0]
        x = self._layer_norm(x.reshape(B * T, H), self.emb_ln)
        # Additive attention mask over keys: 0 for tokens, very negative for padding.
        key_bias = ((1.0 - mask.astype(np.float32)) * np.float32(-1e9))[:, None, None, :]
        scale = np.float32(1.0 / np.sqrt(hd))
        for blk in self.blocks:
            qkv = x @ blk["qkv_w"]
            qkv += blk["qkv_b"]
            qkv = qkv.reshape(B, T, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # (3, B, nh, T, hd)
            q, k, v = qkv[0], qkv[1], qkv[2]
            scores = q @ k.transpose(0, 1, 3, 2)  # (B, nh, T, T)
            scores *= scale
            scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores @ v).transpose(0, 2, 1, 3).reshape(B * T, H)
            # Everything after attention is row-wise: run it on slices of rows
            # so that the (rows, 1536) intermediate stays in the CPU cache; the
            # many element-wise passes of GELU are memory-bound otherwise.
            nx = np.empty_like(x)
            for r in range(0, B * T, self.ROWS):
                rs = slice(r, r + self.ROWS)
                a = ctx[rs] @ blk["ao_w"]
                a += blk["ao_b"]
                a += x[rs]
                a = self._layer_norm(a, blk["ln1"])
                h = a @ blk["in_w"]
                h += blk["in_b"]
                h = self._gelu_(h)
                o = h @ blk["out_w"]
                o += blk["out_b"]
                o += a
                nx[rs] = self._layer_norm(o, blk["ln2"])
            x = nx
        x = x.reshape(B, T, H)
        m = mask.astype(np.float32)[:, :, None]
        pooled = (x * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norm, 1e-12)

    # -- public ---------------------------------------------------------------
    def embed(self, texts):
        """Unit vectors (len(texts), dim) float32 and the token count."""
        np = self.np
        encs = self.tokenizer.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encs]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorted by length so that each sub-batch is padded as little as
        # possible; small requests are split so that every worker gets a share.
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        size = min(self.batch, -(-len(order) // self.workers))
        chunks = [order[s:s + size] for s in range(0, len(order), size)]

        def run(chunk):
            T = max(lengths[i] for i in chunk)
            ids = np.zeros((len(chunk), T), dtype=np.int64)  # [PAD] is id 0
            mask = np.zeros((len(chunk), T), dtype=np.int64)
            for r, i in enumerate(chunk):
                ids[r, :lengths[i]] = encs[i].ids
                mask[r, :lengths[i]] = 1
            out[chunk] = self._forward(ids, mask)

        with self.lock:
            if self.pool is None or len(chunks) == 1:
                for c in chunks:
                    run(c)
            else:
                for f in [self.pool.submit(run, c) for c in chunks]:
                    f.result()
        return out, sum(lengths)


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status, message, param=None, code=None,
                 type_="invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = (
            status, message, param, code, type_)


# Headers that belong to one connection and are not forwarded by the proxy.
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length"}


def make_handler(model: MiniLM, model_id: str, max_inputs: int, quiet: bool,
                 upstream: str | None = None):
    accepted = {model_id.lower(), *ALIASES}
    created = int(time.time())
    up = None
    if upstream:
        from urllib.parse import urlsplit
        up = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as HTTP clients expect
        server_version = "local-embed"

        def log_message(self, fmt, *args):
            if not quiet:
                sys.stderr.write(f"local_embed_server: {self.address_string()} {fmt % args}\n")

        # -- replies --
        def _send_json(self, status, obj):
            body = json.dumps(obj, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_error(self, e: ApiError):
            self._send_json(e.status, {"error": {
                "message": e.message, "type": e.type, "param": e.param, "code": e.code}})

        def _path(self):
            p = self.path.split("?", 1)[0].rstrip("/")
            return p[3:] if p.startswith("/v1/") or p == "/v1" else p

        # -- proxy (only with --upstream) --
        def _proxy(self, body):
            """Forwards this request to the upstream server and relays its answer,
            streamed (chat completions with "stream": true are SSE)."""
            import http.client
            conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except OSError as e:
                conn.close()
                raise ApiError(502, f"upstream {upstream} unreachable: {e}",
                               type_="server_error") from None
            try:
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                length = resp.getheader("Content-Length")
                if length is not None:
                    self.send_header("Content-Length", length)
                else:  # streamed: the end of the body is the end of the connection
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                while True:
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    self.wfile.flush()
            finally:
                conn.close()

        def _upstream_models(self):
            import urllib.request
            try:
                url = f"{up.scheme}://{up.netloc}/v1/models"
                with urllib.request.urlopen(url, timeout=5) as r:
                    return [m for m in json.load(r).get("data", []) if m.get("id") != model_id]
            except (OSError, ValueError):
                return []

        # -- GET --
        def do_GET(self):
            p = self._path()
            model_obj = {"id": model_id, "object": "model", "created": created,
                         "owned_by": "local"}
            if p == "/models":
                others = self._upstream_models() if up else []
                self._send_json(200, {"object": "list", "data": others + [model_obj]})
            elif up and not (p in ("/health", "") or
                             (p.startswith("/models/") and p[8:].lower() in accepted)):
                try:
                    self._proxy(None)
                except ApiError as e:
                    self._send_error(e)
            elif p.startswith("/models/"):
                if p[len("/models/"):].lower() in accepted:
                    self._send_json(200, model_obj)
                else:
                    self._send_error(ApiError(404, f"The model `{p[8:]}` does not exist.",
                                              code="model_not_found"))
            elif p in ("/health", ""):
                self._send_json(200, {"status": "ok"})
            else:
                self._send_error(ApiError(404, f"Unknown path {self.path}", code="not_found"))

        do_HEAD = do_GET

        # -- POST --
        def do_POST(self):
            try:
                body = self._read_body()
                if up and not self._is_ours(body):
                    self._proxy(body)
                    return
                if self._path() != "/embeddings":
                    raise ApiError(404, f"Unknown path {self.path}", code="not_found")
                self._send_json(200, self._embeddings(body))
            except ApiError as e:
                self._send_error(e)
            except Exception as e:  # a bug, not bad input: say so, keep serving
                sys.stderr.write(f"local_embed_server: internal error: {e!r}\n")
                self._send_error(ApiError(500, f"internal error: {e}", type_="server_error"))

        def _is_ours(self, body):
            """With --upstream: embeddings for our model are served here, all else
            (chat completions, embeddings for the upstream's models) goes on."""
            if self._path() != "/embeddings":
                return False
            try:
                m = json.loads(body).get("model")
            except (ValueError, AttributeError):
                return True  # malformed: answer the error here
            return not isinstance(m, str) or m.lower() in accepted

        def _read_body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise ApiError(411, "chunked request bodies are not supported; "
                                    "send Content-Length")
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "bad Content-Length") from None
            if n > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, f"request body over {MAX_BODY_BYTES} bytes")
            return self.rfile.read(n) if n > 0 else b""

        def _embeddings(self, raw):
            try:
                req = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as e:
                raise ApiError(400, f"request body is not valid JSON: {e}") from None
            if not isinstance(req, dict):
                raise ApiError(400, "request body must be a JSON object")

            model_name = req.get("model")
            if not isinstance(model_name, str) or not model_name:
                raise ApiError(400, "you must provide a model parameter", param="model")
            if model_name.lower() not in accepted:
                raise ApiError(404, f"The model `{model_name}` does not exist; "
                                    f"this server has `{model_id}`.",
                               param="model", code="model_not_found")

            inp = req.get("input")
            if isinstance(inp, str):
                texts = [inp]
            elif isinstance(inp, list) and inp and all(isinstance(t, str) for t in inp):
                texts = inp
            elif isinstance(inp, list) and inp and all(
                    isinstance(t, int) or isinstance(t, list) for t in inp):
                raise ApiError(400, "token arrays are not supported by this server; "
                                    "send strings", param="input")
            elif isinstance(inp, list) and not inp:
                raise ApiError(400, "'input' must not be an empty array", param="input")
            else:
                raise ApiError(400, "'input' must be a string or an array of strings",
                               param="input")
            if len(texts) > max_inputs:
                raise ApiError(400, f"too many inputs: {len(texts)} (at most {max_inputs} "
                                    f"per request)", param="input")

            fmt = req.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise ApiError(400, f"'encoding_format' must be 'float' or 'base64', "
                                    f"not {fmt!r}", param="encoding_format")
            dims = req.get("dimensions")
            if dims is not None and dims != model.dim:
                raise ApiError(400, f"this model has {model.dim} dimensions; 'dimensions' "
                                    f"cannot be {dims!r}", param="dimensions")

            t0 = time.perf_counter()
            vecs, n_tokens = model.embed(texts)
            if not quiet:
                sys.stderr.write(f"local_embed_server: embedded {len(texts)} inputs, "
                                 f"{n_tokens} tokens in {time.perf_counter() - t0:.3f}s\n")
            data = []
            for i, v in enumerate(vecs):
                if fmt == "base64":  # little-endian float32, as OpenAI sends it
                    emb = base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                else:
                    emb = v.tolist()
                data.append({"object": "embedding", "index": i, "embedding": emb})
            return {"object": "list", "data": data, "model": model_id,
                    "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}

    return Handler


# ---------------------------------------------------------------------------
# Self-test: known similarities of all-MiniLM-L6-v2
# ---------------------------------------------------------------------------
# (a, b, expected cosine, tolerance). Expected values are the ones published for
# this model by sentence-transformers (its README quick start and its
# semantic-textual-similarity docs); sentence-transformers itself prints them
# rounded to 4 decimals.
SELFTEST_PAIRS = [
    ("The weather is lovely today.", "It's so sunny outside!", 0.6660, 0.002),
    ("The weather is lovely today.", "He drove to the stadium.", 0.1046, 0.002),
    ("It's so sunny outside!", "He drove to the stadium.", 0.1411, 0.002),
    ("A man is eating food.", "A man is eating a piece of bread.", 0.75, 0.1),
    ("A man is eating food.", "A monkey is playing drums.", 0.05, 0.1),
]


def selftest(model: MiniLM) -> int:
    import numpy as np

    ok = True
    for a, b, want, tol in SELFTEST_PAIRS:
        v, _ = model.embed([a, b])
        got = float(np.dot(v[0], v[1]))
        good = abs(got - want) <= tol
        ok &= good
        print(f"{'ok ' if good else 'BAD'} cos={got:+.4f} (expected {want:+.4f} ±{tol})  "
              f"{a!r} / {b!r}")
    # Padding must not change a vector: alone vs. in a batch with a longer text
    # (one worker, so that both texts share one padded sub-batch).
    short = "A man is eating food."
    alone, _ = model.embed([short])
    workers, model.workers = model.workers, 1
    try:
        batched, _ = model.embed([short, "A much longer sentence " * 20])
    finally:
        model.workers = workers
    diff = float(np.abs(alone[0] - batched[0]).max())
    good = diff < 1e-5
    ok &= good
    print(f"{'ok ' if good else 'BAD'} padding invariance: max |diff| = {diff:.2e}")
    print("selftest passed" if ok else "selftest FAILED")
    return 0 if ok else 1


# ---------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", required=True,
                    help="folder with model.safetensors, tokenizer.json and config.json")
    ap.add_argument("--model-id", default=DEFAULT_MODEL_ID, help="id shown by /v1/models")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8082)
    ap.add_argument("--threads", type=int, default=2,
                    help="worker threads, each running sub-batches with single-threaded "
                         "BLAS (default 2: one per core here)")
    ap.add_argument("--max-tokens", type=int, default=256,
                    help="tokens per input, longer inputs are truncated (default 256)")
    ap.add_argument("--batch", type=int, default=32, help="inputs per forward pass")
    ap.add_argument("--max-inputs", type=int, default=256, help="inputs per request")
    ap.add_argument("--quiet", action="store_true", help="no per-request log lines")
    ap.add_argument("--upstream", metavar="URL",
                    help="forward everything but our embeddings (chat completions, other "
                         "models) to this OpenAI-compatible server, e.g. "
                         "http://127.0.0.1:8081, so that one base_url serves both")
    ap.add_argument("--selftest", action="store_true",
                    help="check known similarities and exit (no server)")
    args = ap.parse_args()

    # Must be set before numpy loads OpenBLAS. One BLAS thread per worker:
    # measured on 2 cores, 2 workers x 1 BLAS thread beat 1 worker x 2 BLAS
    # threads (the element-wise half of the work is single-threaded in numpy,
    # and OpenBLAS's spinning idle threads slow everything else down on a busy
    # machine, at worst 3x).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")

    t0 = time.perf_counter()
    try:
        model = MiniLM(args.model_dir, max_tokens=args.max_tokens, batch=args.batch,
                       workers=args.threads)
    except (OSError, KeyError, ValueError) as e:
        print(f"local_embed_server: cannot load the model from {args.model_dir}: {e}",
              file=sys.stderr)
        return 2
    model.embed(["warm up"])
    load_s = time.perf_counter() - t0

    if args.selftest:
        return selftest(model)

    upstream = args.upstream.rstrip("/") if args.upstream else None
    if upstream and upstream.endswith("/v1"):
        upstream = upstream[:-3]
    if upstream and not upstream.startswith("http://"):
        print("local_embed_server: --upstream must be an http:// URL", file=sys.stderr)
        return 2
    handler = make_handler(model, args.model_id, args.max_inputs, args.quiet, upstream)
    try:
        server = ThreadingHTTPServer((args.host, args.port), handler)
    except OSError as e:
        print(f"local_embed_server: cannot listen on {args.host}:{args.port}: {e}",
              file=sys.stderr)
        return 1
    server.daemon_threads = True

    def _on_signal(signum, _frame):
        print(f"local_embed_server: signal {signum}, shutting down", flush=True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_signal)
    print(f"local_embed_server: serving {args.model_id!r} ({model.dim} dims, "
          f"max {model.max_tokens} tokens) on http://{args.host}:{args.port}/v1 "
          f"(model loaded in {load_s:.1f}s, {args.threads} worker threads"
          f"{', everything else forwarded to ' + upstream if upstream else ''})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
