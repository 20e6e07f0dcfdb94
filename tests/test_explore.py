"""The explorer: its JSON API on bad input and under concurrent requests, and its page in a real
headless Chromium, held to the model and tokenizer computed directly."""

import ast
import concurrent.futures
import html.parser
import json
import pathlib
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import jax.numpy as jnp
import numpy as np
import pytest

from llm_input import cli
from llm_input.explore import server
from llm_input.explore.page import PAGE
from llm_input.train import reload as run_lib

from test_report import CHROMIUM_FLAGS, _chromium

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "hf"
TEXT = "The bank by the river"


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
  """Two imported models side by side (GPT-2 and Llama fixtures), and a run without checkpoints."""
  root = tmp_path_factory.mktemp("explore")
  for name in ("gpt2", "llama"):
    assert cli.main(["import-hf", "--from", str(FIXTURES / name), "--out", str(root / name)]) == 0
  shutil.copytree(root / "gpt2", root / "empty")
  shutil.rmtree(root / "empty" / "checkpoints")
  e = server.Explorer([str(root / n) for n in ("gpt2", "llama", "empty")])
  srv, base = server.serve_in_thread(e)
  yield e, base, root
  srv.shutdown()


def get(base, path, params=None, body=None):
  url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
  request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                   method="GET" if body is None else "POST")
  try:
    with urllib.request.urlopen(request, timeout=60) as r:
      return r.status, json.loads(r.read())
  except urllib.error.HTTPError as err:
    return err.code, json.loads(err.read())


def test_api_answers_bad_input_with_a_message(explorer):
  _, base, _ = explorer
  cases = [({"run": "gpt2", "text": ""}, None, 400, "the text is empty"),
           (None, {"run": "gpt2", "text": "a" * 100_000}, 400, "at most 20,000"),
           ({"run": "nope", "text": TEXT}, None, 404, "no run named 'nope'"),
           ({"run": "empty", "text": TEXT}, None, 400, "has no checkpoints yet"),
           ({"run": "gpt2", "text": TEXT, "k": "0"}, None, 400, "k must be between 1 and 50"),
           ({"run": "gpt2", "text": "word " * 40}, None, 400, "this model's context is 32")]
  for params, body, status, needle in cases:
    code, answer = get(base, "/api/view", params, body)
    assert code == status and needle in answer["error"], (params, answer)
  code, answer = get(base, "/api/view", {"run": "gpt2", "text": "a" * 100_000})  # too long a URL
  assert code == 414 and "POST" in answer["error"]
  assert get(base, "/api/neighbours", {"run": "gpt2", "id": "99999"})[0] == 400
  assert get(base, "/api/nothing")[0] == 404
  runs = get(base, "/api/runs")[1]["runs"]
  assert [r["name"] for r in runs] == ["gpt2", "llama", "empty"] and "error" in runs[2]


def test_fifty_concurrent_requests_all_answer_correctly(explorer):
  _, base, _ = explorer
  texts = [f"{TEXT} {i % 5}" for i in range(50)]
  serial = {t: get(base, "/api/view", {"run": "llama", "text": t})[1] for t in set(texts)}
  with concurrent.futures.ThreadPoolExecutor(50) as pool:
    answers = list(pool.map(lambda t: get(base, "/api/view", {"run": "llama", "text": t}), texts))
  assert all(code == 200 and body == serial[t] for t, (code, body) in zip(texts, answers))


def test_api_figures_equal_the_model_computed_directly(explorer):
  e, base, root = explorer
  run = run_lib.load_run(root / "llama")
  _, view = get(base, "/api/view", {"run": "llama", "text": TEXT, "k": 5, "temperature": 0.7})
  ids = run.prompt_ids(TEXT)
  assert [t["id"] for t in view["tokens"]] == ids
  logits = np.asarray(run.model()(jnp.asarray([ids], jnp.int32))[0], np.float64) / 0.7
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  for q, row in enumerate(view["predictions"]):
    assert [p["id"] for p in row] == list(np.argsort(-probs[q])[:5])
    np.testing.assert_allclose([p["p"] for p in row], np.sort(probs[q])[::-1][:5], rtol=1e-5)
  weights = np.asarray(view["attention"])
  np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-4)
  assert np.all(np.triu(weights, 1) == 0)  # causal
  # the logit lens after the last layer is the model's own prediction (at temperature 1)
  _, lens = get(base, "/api/lens", {"run": "llama", "text": TEXT, "position": 3})
  _, plain = get(base, "/api/view", {"run": "llama", "text": TEXT, "k": 3})
  assert [p["id"] for p in lens["layers"][-1]] == [p["id"] for p in plain["predictions"][3]]
  np.testing.assert_allclose([p["p"] for p in lens["layers"][-1]],
                             [p["p"] for p in plain["predictions"][3]], rtol=1e-5)
  assert len(lens["layers"]) == run.model_cfg.num_layers


class _Dom(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.elements: list[tuple[str, dict, list]] = []
    self._stack: list = []

  def handle_starttag(self, tag, attrs):
    element = (tag, dict(attrs), [])
    self.elements.append(element)
    if tag not in ("br", "img", "input", "meta"):
      self._stack.append(element)

  def handle_endtag(self, tag):
    while self._stack:
      if self._stack.pop()[0] == tag:
        break

  def handle_data(self, data):
    for element in self._stack:
      element[2].append(data)

  def find(self, cls=None, **attrs):
    return [e for e in self.elements
            if (cls is None or cls in e[1].get("class", "").split())
            and all(e[1].get(k.replace("_", "-")) == v for k, v in attrs.items())]


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (make test "
                    "installs it with apt-get where it can; without it the browser check cannot run)")
def test_the_page_in_headless_chromium(explorer, tmp_path, capsys):
  e, base, root = explorer
  assert "http://" not in PAGE and "https://" not in PAGE and "//cdn" not in PAGE
  url = base + "/?" + urllib.parse.urlencode([("text", TEXT), ("run", "gpt2"), ("run", "llama"), ("sel", "2")])
  # every host but the explorer's resolves nowhere: a request leaving 127.0.0.1 would fail loudly
  dom = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=30000",
                        "--dump-dom", url], capture_output=True, text=True, timeout=180)
  assert dom.returncode == 0, dom.stderr[-2000:]
  page = _Dom()
  page.feed(dom.stdout)
  assert page.find(None, data_ready="1"), dom.stdout[-3000:]
  errors = [line for line in dom.stderr.splitlines() if "Uncaught" in line or "ERR_NAME" in line]
  assert not errors, errors
  assert not page.find("err")
  # the pieces are what `tokenizer show` prints for this run's tokenizer
  run = run_lib.load_run(root / "gpt2")
  assert cli.main(["tokenizer", "show", "--tokenizer", str(root / "gpt2" / "tokenizer"), TEXT]) == 0
  shown = capsys.readouterr().out
  shown_ids = [int(i) for i in shown.split("ids:")[1].splitlines()[0].split()]
  shown_pieces = ast.literal_eval("[" + ", ".join(shown.split("pieces:")[1].strip().splitlines()[0].split(" ")) + "]")
  row = page.find("tokenizer", data_name="gpt2 (hf)")[0]
  after = page.elements[page.elements.index(row):]
  pieces = [p for p in page.find("piece") if any(p is a for a in after)][:len(shown_ids)]
  assert [int(p[1]["data-id"]) for p in pieces] == shown_ids == run.tokenizer.encode(TEXT)
  assert ["".join(p[2]).removesuffix(p[1]["data-id"]) for p in pieces] == shown_pieces
  # both runs side by side, the clicked token's attention row sums to 1 in every head
  for name in ("gpt2", "llama"):
    assert page.find("pieces", data_run=name)
  rows = page.find("attends")
  model = run_lib.load_run(root / "llama").model_cfg
  assert len(rows) == 2 * model.num_layers * model.num_heads  # gpt2 and llama: 2 layers x 4 heads each
  assert all(abs(float(r[1]["data-sum"]) - 1) < 1e-4 for r in rows)
  # the top-k probabilities shown are the model's softmax after each prefix
  ids = run.prompt_ids(TEXT)
  logits = np.asarray(run.model()(jnp.asarray([ids], jnp.int32))[0], np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  shown_top = [(int(t[1]["data-id"]), float(t[1]["data-p"])) for t in page.find("top")][:5 * len(ids)]
  for q in range(len(ids)):
    for rank, (i, p) in enumerate(shown_top[5 * q:5 * q + 5]):
      assert i == int(np.argsort(-probs[q])[rank]) and p == pytest.approx(probs[q, i], rel=1e-5)
  assert page.find("neighbours") and page.find("lens")


class DevTools:
  """A minimal Chrome DevTools Protocol client over a WebSocket (RFC 6455), standard library
  only: enough to type into a page, click it, and read its DOM and network requests."""

  def __init__(self, ws_url: str):
    import base64  # noqa: PLC0415
    import os  # noqa: PLC0415
    import socket  # noqa: PLC0415

    url = urllib.parse.urlsplit(ws_url)
    self.sock = socket.create_connection((url.hostname, url.port), timeout=120)
    key = base64.b64encode(os.urandom(16)).decode()
    self.sock.sendall((f"GET {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
      response += self.sock.recv(4096)
    assert b" 101 " in response.split(b"\r\n")[0], response[:200]
    self.buffer = response.split(b"\r\n\r\n", 1)[1]
    self.next_id = 0
    self.events: list[dict] = []

  def _exactly(self, n: int) -> bytes:
    while len(self.buffer) < n:
      chunk = self.sock.recv(1 << 16)
      if not chunk:
        raise EOFError("DevTools closed the connection")
      self.buffer += chunk
    data, self.buffer = self.buffer[:n], self.buffer[n:]
    return data

  def _message(self) -> dict:
    import struct  # noqa: PLC0415

    parts = []
    while True:
      head = self._exactly(2)
      size = head[1] & 0x7F
      if size == 126:
        size = struct.unpack(">H", self._exactly(2))[0]
      elif size == 127:
        size = struct.unpack(">Q", self._exactly(8))[0]
      parts.append(self._exactly(size))  # a server's frames are not masked
      if head[0] & 0x80:
        return json.loads(b"".join(parts))

  def call(self, method: str, **params) -> dict:
    import os  # noqa: PLC0415
    import struct  # noqa: PLC0415

    self.next_id += 1
    data = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
    size = len(data)
    header = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else
                              bytes([0x80 | 126]) + struct.pack(">H", size) if size < 1 << 16 else
                              bytes([0x80 | 127]) + struct.pack(">Q", size))
    mask = os.urandom(4)
    self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    while True:
      message = self._message()
      if message.get("id") == self.next_id:
        if "error" in message:
          raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result", {})
      self.events.append(message)

  def evaluate(self, expression: str):
    return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

  def wait_for(self, expression: str, timeout: float = 60.0):
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
      value = self.evaluate(expression)
      if value:
        return value
      time.sleep(0.1)
    raise TimeoutError(f"the page never satisfied {expression!r}")

  def click(self, selector: str) -> None:
    box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    for kind in ("mousePressed", "mouseReleased"):
      self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (make test "
                    "installs it with apt-get where it can; without it the browser check cannot run)")
def test_typing_and_clicking_in_the_page(explorer, tmp_path):
  """Keystrokes through DevTools (Input.insertText, as typing does), a mouse click on a token,
  and every request the page made, read back from the browser."""
  import re  # noqa: PLC0415
  import time  # noqa: PLC0415

  e, base, root = explorer
  browser = subprocess.Popen([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              "--remote-debugging-port=0", "--window-size=1200,1600",
                              base + "/?run=gpt2&run=llama&text=Hello"],
                             stderr=subprocess.PIPE, text=True)
  try:
    port = None
    deadline = time.monotonic() + 60
    while port is None and time.monotonic() < deadline:
      line = browser.stderr.readline()
      found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
      port = found and int(found.group(1))
    assert port, "chromium did not start its DevTools endpoint"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
      page = next(t for t in json.loads(r.read()) if t["type"] == "page")
    tools = DevTools(page["webSocketDebuggerUrl"])
    tools.call("Network.enable")
    tools.call("Runtime.enable")
    tools.wait_for("document.body.dataset.ready === '1' && document.querySelectorAll('.pieces').length === 2")
    tools.evaluate("document.getElementById('text').focus(); document.getElementById('text').select()")
    tools.call("Input.insertText", text=TEXT)  # replaces the selection, firing input events
    tools.wait_for(f"document.body.dataset.ready === '1' && location.search.includes('text=The+bank')"
                   " && document.querySelector('.pieces .piece[data-pos=\"4\"]') !== null")
    run = run_lib.load_run(root / "gpt2")
    shown = tools.evaluate("[...document.querySelectorAll('.pieces[data-run=\"gpt2\"] .piece')].map(p => +p.dataset.id)")
    assert shown == run.prompt_ids(TEXT)
    tools.click('.pieces[data-run="gpt2"] .piece[data-pos="2"]')
    tools.wait_for("document.body.dataset.ready === '1' && location.search.includes('sel=2')"
                   " && document.querySelector('table.lens') !== null")
    sums = tools.evaluate("[...document.querySelectorAll('tr.attends')].map(r => +r.dataset.sum)")
    assert len(sums) == 2 * 2 * 4 and all(abs(s - 1) < 1e-4 for s in sums)
    assert tools.evaluate("document.querySelector('.pieces[data-run=\"gpt2\"] .piece.sel').dataset.pos") == "2"
    # the top-k shown after each prefix are the model's softmax, computed directly
    ids = run.prompt_ids(TEXT)
    logits = np.asarray(run.model()(jnp.asarray([ids], jnp.int32))[0], np.float64)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    shown_top = tools.evaluate("[...document.querySelectorAll('.col:first-child table.predictions tr[data-pos]')]"
                               ".map(r => [...r.querySelectorAll('.top')].map(t => [+t.dataset.id, +t.dataset.p]))")
    assert len(shown_top) == len(ids)
    for q, row in enumerate(shown_top):
      assert [i for i, _ in row] == list(np.argsort(-probs[q])[:5])
      np.testing.assert_allclose([p for _, p in row], np.sort(probs[q])[::-1][:5], rtol=1e-5)
    requests = [ev["params"]["request"]["url"] for ev in tools.events
                if ev.get("method") == "Network.requestWillBeSent"]
    assert requests and all(u.startswith(base + "/") for u in requests), requests
  finally:
    browser.kill()
    browser.wait()
