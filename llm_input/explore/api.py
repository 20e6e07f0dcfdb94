"""What the explorer shows, as plain functions over a loaded run (a notebook can call them too):
tokens, next-token predictions, attention, embedding neighbours and the logit lens.

Every figure comes from the run's own model and tokenizer (`train.reload.load_run`) and the
report's analysis functions. The model is compiled once per input-length bucket (powers of two
up to the run's context): inputs are padded at the end, which a causal model's earlier
positions never see, so one compilation serves every text of that bucket.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import threading

import numpy as np

from llm_input.errors import UserError

MAX_CHARS = 20_000  # longer texts are refused (the page is for sentences, not books)


class ExploreError(UserError):
  label = "explore"


def _bucket(length: int, context: int) -> int:
  size = 16
  while size < length:
    size *= 2
  return min(size, context)


@dataclasses.dataclass
class Loaded:
  """A run loaded for exploring: its model, compiled per bucket, and its tables."""

  name: str
  path: str
  run: object = None  # train.reload.Run
  initial: object = None  # the step-0 Run when the folder has one
  error: str = ""  # why it could not be loaded (answered to every request for it)
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  @functools.cached_property
  def _forward(self):
    import jax  # noqa: PLC0415
    from flax import nnx  # noqa: PLC0415

    from llm_input.model import transformer  # noqa: PLC0415

    model_cfg = dataclasses.replace(self.run.model_cfg, attention_impl="reference")
    graphdef, _ = nnx.split(transformer.abstract(model_cfg), nnx.Param)

    @jax.jit
    def forward(params, ids_1xL):
      model = nnx.merge(graphdef, params)
      logits, weights = model(ids_1xL, return_attention=True)
      return logits, weights, residuals(model, ids_1xL)

    return forward

  def compute(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits (L, V), attention (layers, heads, L, L), residual after each layer (layers, L, D))."""
    import jax.numpy as jnp  # noqa: PLC0415

    length = len(ids)
    padded = ids + [ids[-1]] * (_bucket(length, self.context) - length)
    with self.lock:
      logits, weights, stream = self._forward(self.run.params, jnp.asarray([padded], jnp.int32))
    return (np.asarray(logits[0, :length], np.float64),
            np.asarray(weights[:, 0, :, :length, :length], np.float64),
            np.asarray(stream[:, 0, :length], np.float32))

  @property
  def context(self) -> int:
    return self.run.sampler.context

  @functools.cached_property
  def tables(self) -> dict:
    """Embedding tables (float64) and random-pair cosines, for neighbours and percentiles."""
    from llm_input.analysis import embeddings  # noqa: PLC0415

    out = {}
    for label, run in (("trained", self.run), ("initialisation", self.initial)):
      if run is None:
        continue
      table = np.asarray(run.params["embedding"]["table"], np.float64)[: self.run.tokenizer.vocab_size]
      out[label] = {"table": table, "unit": table / (np.linalg.norm(table, axis=1, keepdims=True) + 1e-12),
                    "random": np.sort(embeddings.random_pair_cosines(table, count=20000, seed=0))}
    return out


def residuals(model, ids_1xL):
  """The residual stream after each block (layers, B, L, D): what the logit lens reads."""
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  from flax import nnx  # noqa: PLC0415

  positions = jnp.broadcast_to(jnp.arange(ids_1xL.shape[1]), ids_1xL.shape)
  segments = jnp.ones(ids_1xL.shape, jnp.int32)
  x = model.positions(model.embedding(ids_1xL), positions)
  graphdef, stacked = nnx.split(model.blocks)

  def step(x, layer_state):
    block = nnx.merge(graphdef, layer_state)
    x, _, _ = block(x, positions, segments)
    return x, x

  _, stream = jax.lax.scan(step, x, stacked)
  return stream


def load(path, name: str | None = None) -> Loaded:
  """A run folder for exploring; a folder that cannot be used is kept with its error."""
  from llm_input.train import reload as run_lib  # noqa: PLC0415

  path = pathlib.Path(path)
  loaded = Loaded(name or path.name, str(path))
  try:
    loaded.run = run_lib.load_run(path)
    if 0 in loaded.run.folder.checkpoint_steps() and loaded.run.step != 0:
      loaded.initial = run_lib.load_run(path, step=0)
  except UserError as err:
    loaded.error = f"{err.label}: {err}"
  return loaded


def _check_text(text: str) -> str:
  if not isinstance(text, str) or not text.strip():
    raise ExploreError("the text is empty; type a sentence")
  if len(text) > MAX_CHARS:
    raise ExploreError(f"the text has {len(text):,} characters; the explorer takes at most "
                       f"{MAX_CHARS:,}")
  return text


def tokens(tokenizer, text: str) -> list[dict]:
  """Every token of `text`: its piece, id and the UTF-8 bytes of the text it stands for."""
  ids, counts = tokenizer.encode_with_byte_counts(_check_text(text))
  return [{"id": int(i), "piece": tokenizer.id_to_piece(int(i)), "bytes": int(n)}
          for i, n in zip(ids, counts)]


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
  z = logits / temperature
  z = z - z.max(-1, keepdims=True)
  p = np.exp(z)
  return p / p.sum(-1, keepdims=True)


def view(loaded: Loaded, text: str, k: int = 5, temperature: float = 1.0) -> dict:
  """Tokens, the top-k next-token distribution after every prefix, and every head's attention."""
  if loaded.error:
    raise ExploreError(f"run {loaded.name}: {loaded.error}")
  if not 1 <= int(k) <= 50:
    raise ExploreError(f"k must be between 1 and 50, got {k}")
  if not 0.05 <= float(temperature) <= 10:
    raise ExploreError(f"temperature must be between 0.05 and 10, got {temperature}")
  run = loaded.run
  tok = run.tokenizer
  pieces = tokens(tok, text)
  add_bos = bool(run.config.data.add_bos)
  ids = ([tok.bos_id] if add_bos else []) + [p["id"] for p in pieces]
  if len(ids) > loaded.context:
    raise ExploreError(f"the text is {len(ids):,} tokens; this model's context is {loaded.context:,}")
  logits, weights, _ = loaded.compute(ids)
  probs = _softmax(logits[:, : tok.vocab_size], float(temperature))
  top = np.argsort(-probs, axis=-1)[:, : int(k)]
  labels = ([{"id": int(tok.bos_id), "piece": tok.id_to_piece(int(tok.bos_id)), "bytes": 0}]
            if add_bos else []) + pieces
  return {"run": loaded.name, "state": run.folder.state(), "tokens": labels,
          "predictions": [[{"id": int(i), "piece": tok.id_to_piece(int(i)), "p": float(probs[q, i])}
                           for i in top[q]] for q in range(len(ids))],
          "attention": np.round(weights, 5).tolist(), "layers": int(weights.shape[0]),
          "heads": int(weights.shape[1]), "temperature": float(temperature)}


def neighbours(loaded: Loaded, token_id: int, k: int = 8) -> dict:
  """The k rows nearest to a token's row (cosine), each with its percentile among random
  pairs of the same table, trained and at initialisation."""
  if loaded.error:
    raise ExploreError(f"run {loaded.name}: {loaded.error}")
  vocab = loaded.run.tokenizer.vocab_size
  if not 0 <= int(token_id) < vocab:
    raise ExploreError(f"token id {token_id} is outside the vocabulary (0-{vocab - 1})")
  tok = loaded.run.tokenizer
  out = {"id": int(token_id), "piece": tok.id_to_piece(int(token_id))}
  for label, t in loaded.tables.items():
    scores = t["unit"] @ t["unit"][int(token_id)]
    scores[int(token_id)] = -np.inf
    order = np.argsort(-scores)[:k]
    out[label] = [{"id": int(i), "piece": tok.id_to_piece(int(i)), "cosine": float(scores[i]),
                   "percentile": float(100 * np.searchsorted(t["random"], scores[i]) / len(t["random"]))}
                  for i in order]
  return out


def lens(loaded: Loaded, text: str, position: int, k: int = 3) -> dict:
  """The logit lens at one position: the top tokens read from the residual stream after each
  layer through the final norm and the output head."""
  import jax.numpy as jnp  # noqa: PLC0415

  if loaded.error:
    raise ExploreError(f"run {loaded.name}: {loaded.error}")
  run = loaded.run
  tok = run.tokenizer
  add_bos = bool(run.config.data.add_bos)
  ids = ([tok.bos_id] if add_bos else []) + [p["id"] for p in tokens(tok, text)]
  if not 0 <= int(position) < len(ids):
    raise ExploreError(f"position {position} is outside the text's {len(ids)} tokens")
  _, _, stream = loaded.compute(ids)
  model = run.model()
  x = jnp.asarray(stream[:, int(position)][None])  # (1, layers, D): layers as positions
  logits = np.asarray(model.embedding.logits(model.final_norm(x))[0], np.float64)[:, : tok.vocab_size]
  probs = _softmax(logits, 1.0)
  return {"position": int(position), "layers": [
      [{"id": int(i), "piece": tok.id_to_piece(int(i)), "p": float(probs[layer, i])}
       for i in np.argsort(-probs[layer])[:k]] for layer in range(probs.shape[0])]}
