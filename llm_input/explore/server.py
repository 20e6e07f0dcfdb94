"""`llm-input explore`: the page and its JSON API on 127.0.0.1.

The standard library's `http.server.ThreadingHTTPServer`: the explorer serves one page and a
handful of small JSON answers to one researcher's browser, so a framework (and a dependency
to pin) would buy nothing; every request runs on its own thread and the model calls of a run
are serialised by its lock.

API (GET with a query string, or POST with the same fields as a JSON object for long texts;
every answer is JSON; a bad request is `{"error": message}` with status 400, an
unknown run 404, never a traceback):
  /api/runs                                   the runs: name, state, tokenizer, model
  /api/view?run=R&text=T[&k=5][&temperature=1] tokens, top-k next-token predictions after every
                                               prefix, attention (layers, heads, L, L)
  /api/tokens?text=T[&tokenizer=NAME]          pieces, ids and bytes under every tokenizer
  /api/neighbours?run=R&id=I[&k=8]             nearest rows (cosine, percentile among random pairs)
  /api/lens?run=R&text=T&position=P            the top tokens after each layer at P
"""

from __future__ import annotations

import http
import http.server
import json
import pathlib
import threading
import urllib.parse

from llm_input.explore import api
from llm_input.explore.page import PAGE
from llm_input.errors import UserError

MAX_BODY = 1 << 20

class Explorer:
  def __init__(self, runs: list[str], tokenizers: list[str] = ()):
    from llm_input import tokenizers as tok_lib  # noqa: PLC0415

    self.runs: dict[str, api.Loaded] = {}
    for path in runs:
      name = pathlib.Path(path).name
      while name in self.runs:
        name += "'"
      self.runs[name] = api.load(path, name)
    self.tokenizers = {}
    for path in tokenizers:
      try:
        self.tokenizers[pathlib.Path(path).name] = tok_lib.load(path)
      except UserError as err:
        raise api.ExploreError(f"--tokenizer {path}: {err}") from None

  def run(self, query: dict) -> api.Loaded:
    name = query.get("run") or next(iter(self.runs), None)
    if name not in self.runs:
      raise LookupError(f"no run named {name!r}; this explorer serves {', '.join(self.runs) or 'none'}")
    return self.runs[name]

  def answer(self, path: str, query: dict) -> tuple[int, dict]:
    try:
      if path == "/api/runs":
        return 200, {"runs": [self._describe(r) for r in self.runs.values()],
                     "tokenizers": list(self.tokenizers)}
      if path == "/api/view":
        return 200, api.view(self.run(query), query.get("text", ""), int(query.get("k", 5)),
                             float(query.get("temperature", 1.0)))
      if path == "/api/tokens":
        named = {f"{r.name} ({r.run.tokenizer.kind})": r.run.tokenizer
                 for r in self.runs.values() if not r.error}
        named.update({f"{n} ({t.kind})": t for n, t in self.tokenizers.items()})
        return 200, {"tokenizers": [{"name": n, "tokens": api.tokens(t, query.get("text", ""))}
                                    for n, t in named.items()]}
      if path == "/api/neighbours":
        return 200, api.neighbours(self.run(query), int(query.get("id", -1)), int(query.get("k", 8)))
      if path == "/api/lens":
        return 200, api.lens(self.run(query), query.get("text", ""), int(query.get("position", -1)))
      return 404, {"error": f"no such page {path!r}; the API is /api/runs, /api/view, /api/tokens, "
                            "/api/neighbours, /api/lens"}
    except LookupError as err:
      return 404, {"error": str(err).strip("'\"")}
    except (UserError, ValueError) as err:
      return 400, {"error": str(err)}

  def _describe(self, r: api.Loaded) -> dict:
    if r.error:
      return {"name": r.name, "path": r.path, "error": r.error}
    m = r.run.model_cfg
    return {"name": r.name, "path": r.path, "state": r.run.folder.state(), "step": r.run.step,
            "tokenizer": r.run.tokenizer.kind, "vocab_size": r.run.tokenizer.vocab_size,
            "layers": m.num_layers, "heads": m.num_heads, "d_model": m.d_model,
            "positions": m.positions, "context": r.context, "has_initial": r.initial is not None}


def make_server(explorer: Explorer, port: int = 8765) -> http.server.ThreadingHTTPServer:
  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
      url = urllib.parse.urlsplit(self.path)
      if url.path in ("/", "/index.html"):
        self._send(200, PAGE.encode("utf-8"), "text/html; charset=utf-8")
        return
      self._answer(url.path, {k: v[-1] for k, v in
                              urllib.parse.parse_qs(url.query, keep_blank_values=True).items()})

    def do_POST(self):  # noqa: N802
      length = int(self.headers.get("Content-Length") or 0)
      if length > MAX_BODY:
        self._send_json(413, {"error": f"the request is {length:,} bytes; at most {MAX_BODY:,}"})
        return
      try:
        query = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(query, dict):
          raise ValueError("a JSON object was expected")
      except ValueError as err:
        self._send_json(400, {"error": f"the request body is not a JSON object ({err})"})
        return
      self._answer(urllib.parse.urlsplit(self.path).path, {k: str(v) for k, v in query.items()})

    def _answer(self, path, query):
      try:
        status, body = explorer.answer(path, query)
      except Exception as err:  # noqa: BLE001 (a bug must still answer, with its message)
        status, body = 500, {"error": f"{type(err).__name__}: {err}"}
      self._send_json(status, body)

    def send_error(self, code, message=None, explain=None):  # the standard library's errors, as JSON
      hint = "; POST the fields as a JSON object instead" if code == 414 else ""
      self._send_json(code, {"error": f"{message or http.HTTPStatus(code).phrase}{hint}"})

    def _send_json(self, status, body):
      self._send(status, json.dumps(body).encode("utf-8"), "application/json")

    def _send(self, status, data: bytes, kind: str):
      self.send_response(status)
      self.send_header("Content-Type", kind)
      self.send_header("Content-Length", str(len(data)))
      self.send_header("Cache-Control", "no-store")
      self.end_headers()
      self.wfile.write(data)

    def log_message(self, *args):  # quiet: one line per request would drown the terminal
      pass

  server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
  server.daemon_threads = True
  return server


def serve_in_thread(explorer: Explorer, port: int = 0):
  """Starts the server on a free port (tests, notebooks); returns (server, base URL)."""
  server = make_server(explorer, port)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  return server, f"http://127.0.0.1:{server.server_address[1]}"
