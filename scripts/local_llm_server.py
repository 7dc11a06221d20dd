#!/usr/bin/env python3
"""Serve a local GGUF model over an OpenAI-compatible HTTP API (llama.cpp's server).

Started by scripts/local-llm.sh inside its virtual environment (which has the
`xllamacpp` wheel: llama.cpp's C++ server compiled into a Python extension).
It is not meant to be run by hand, but it can be:

    .venv-llm/bin/python scripts/local_llm_server.py \
        --model .cache/llm/SmolLM2-135M-Instruct.Q4_1.gguf --alias smollm2

The HTTP server runs on llama.cpp's own threads; this process only keeps the
Python side alive until SIGINT/SIGTERM, then exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="path to the .gguf file")
    ap.add_argument("--alias", required=True, help="model id shown by /v1/models")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--ctx", type=int, default=4096, help="context size (tokens)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads")
    ap.add_argument("--parallel", type=int, default=1, help="concurrent slots")
    args = ap.parse_args()

    # Must be set before the OpenMP runtime inside llama.cpp initialises: with the
    # default (active) wait policy, idle OpenMP threads spin and fight the
    # HTTP/decode threads for the 2 cores, roughly halving generation speed.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")

    import xllamacpp as xlc  # imported late on purpose (see OMP_WAIT_POLICY above)

    if not os.path.isfile(args.model):
        print(f"local_llm_server: model file not found: {args.model}", file=sys.stderr)
        return 2

    params = xlc.CommonParams()
    params.model.path = args.model
    # Trap: model_alias is a set[str] in xllamacpp (llama.cpp keeps a std::set of
    # aliases); assigning a plain string fails or would be split into letters.
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.n_batch = 512
    params.n_ubatch = 512
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.offline = True  # never try to reach a model hub
    params.ui = False  # no web UI, only the API
    params.warmup = True

    try:
        server = xlc.Server(params)  # loads the model and starts listening
    except RuntimeError as e:
        # llama.cpp has logged the real cause just above (e.g. "couldn't bind
        # HTTP server socket" when the port is taken, or a model load error).
        print(f"local_llm_server: failed to start: {e} (see the llama.cpp log above)",
              file=sys.stderr, flush=True)
        return 1
    print(
        f"local_llm_server: serving {args.alias!r} on {server.listening_address}/v1 "
        f"(model {args.model}, ctx {args.ctx}, threads {args.threads})",
        flush=True,
    )

    stop = threading.Event()

    def _on_signal(signum, _frame):
        print(f"local_llm_server: signal {signum}, shutting down", flush=True)
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    while not stop.wait(1.0):
        pass
    # Leave without running the C++ destructors: llama.cpp's HTTP threads are
    # blocked in accept()/poll() and a normal interpreter shutdown can hang on them.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
