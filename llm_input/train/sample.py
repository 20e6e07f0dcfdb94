"""Sampling with a KV cache: the prompt is run once, then each new token costs one position.

Temperature 0 is greedy (argmax); otherwise logits / temperature, then top-k and top-p
(nucleus) filtering, then a categorical draw.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from llm_input.model import transformer
from llm_input.model.config import ModelConfig, context_length
from llm_input.train.sample_config import SampleConfig  # its typed config, importable without JAX


def filter_logits(logits_BxV: jnp.ndarray, temperature: float, top_k: int, top_p: float) -> jnp.ndarray:
  logits = logits_BxV / temperature
  if top_k and top_k < logits.shape[-1]:
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    logits = jnp.where(logits < kth, -jnp.inf, logits)
  if top_p < 1.0:
    sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(sorted_logits, axis=-1)
    # keep tokens whose preceding cumulative probability is below top_p (at least one)
    keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p
    threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
    logits = jnp.where(logits < threshold, -jnp.inf, logits)
  return logits


def choose(logits_BxV, rng, temperature: float, top_k: int, top_p: float) -> jnp.ndarray:
  if temperature <= 0:
    return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)
  return jax.random.categorical(rng, filter_logits(logits_BxV, temperature, top_k, top_p)).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _prefill(graphdef, params, ids_1xP, cache_len, length):
  """The prompt's first `length` tokens of `ids_1xP` (the rest is padding) into a fresh cache.

  Right padding is exact: under the causal mask no prompt token sees a later position, the
  padding's cache slots are invisible to decoding (it attends to slots <= its position) and
  are overwritten by it, and the cache's index restarts at `length`."""
  model = nnx.merge(graphdef, params)
  cache = model.init_cache(batch=1, max_len=cache_len)
  logits, cache = model(ids_1xP, cache=cache)
  cache = dict(cache, index=jnp.full_like(cache["index"], length))
  return jax.lax.dynamic_index_in_dim(logits, length - 1, axis=1, keepdims=False), cache


def prefill_length(prompt_tokens: int, context: int) -> int:
  """The padded prompt length the prefill is compiled for: powers of two from 64, at most the
  context, so prompts of many lengths share one compilation."""
  return min(context, max(64, 1 << max(prompt_tokens - 1, 0).bit_length()))


@functools.partial(jax.jit, static_argnums=(0,))
def _decode(graphdef, params, cache, token_1, position):
  model = nnx.merge(graphdef, params)
  logits, cache = model(token_1[:, None], position[None, None], cache=cache)
  return logits[:, -1], cache


class Sampler:
  """Generation from one set of parameters. The jitted prefill and decode are module-level
  functions keyed by the model's graph definition (hashable, equal for equal model configs),
  so every Sampler of one model config shares their compilations."""

  def __init__(self, model_cfg: ModelConfig, params: dict, context: int):
    self.params = params
    self.context = context  # longest prompt + continuation the model was trained to attend over
    self.graphdef, _ = nnx.split(transformer.abstract(model_cfg), nnx.Param)

  def generate(self, prompt_ids: list[int], max_new_tokens: int, *, temperature: float = 0.0,
               top_k: int = 0, top_p: float = 1.0, seed: int = 0, stop_id: int | None = None) -> list[int]:
    """Continues `prompt_ids` (non-empty; start with bos) by up to `max_new_tokens` tokens.

    A prompt longer than the context keeps its last `context - 1` tokens (room for one new
    token); `kept_prompt(n)` says how many a prompt of n tokens keeps.
    """
    prompt_ids = list(prompt_ids)[-self.kept_prompt(len(prompt_ids)):]
    steps = max(0, min(max_new_tokens, self.context - len(prompt_ids)))
    # One cache length (the context) and a few padded prompt lengths: the prefill compiles
    # once per prompt-length bucket and the decode step once, whatever the prompts.
    padded = prompt_ids + [0] * (prefill_length(len(prompt_ids), self.context) - len(prompt_ids))
    logits, cache = _prefill(self.graphdef, self.params, jnp.asarray([padded], jnp.int32), self.context,
                             jnp.asarray(len(prompt_ids), jnp.int32))
    rng = jax.random.key(seed)
    out: list[int] = []
    for i in range(steps):
      rng, draw = jax.random.split(rng)
      token = choose(logits, draw, temperature, top_k, top_p)
      out.append(int(token[0]))
      if stop_id is not None and out[-1] == stop_id or i == steps - 1:
        break
      position = jnp.asarray(len(prompt_ids) + i, jnp.int32)
      logits, cache = _decode(self.graphdef, self.params, cache, token, position)
    return out

  def kept_prompt(self, prompt_tokens: int) -> int:
    return max(1, min(prompt_tokens, self.context - 1))


def generate_without_cache(model_cfg: ModelConfig, params: dict, prompt_ids: list[int],
                           max_new_tokens: int) -> list[int]:
  """Greedy decoding by full recomputation: the reference the cached path must equal."""
  graphdef, _ = nnx.split(transformer.abstract(model_cfg), nnx.Param)
  ids = list(prompt_ids)
  for _ in range(max_new_tokens):
    ids.append(int(_last_argmax(graphdef, params, jnp.asarray([ids], jnp.int32))))
  return ids[len(prompt_ids):]


@functools.partial(jax.jit, static_argnums=(0,))
def _last_argmax(graphdef, params, ids_1xL):
  """The whole model over the whole sequence (no cache), compiled once per length."""
  return jnp.argmax(nnx.merge(graphdef, params)(ids_1xL)[0, -1])


def write_samples(s: SampleConfig, run, model_cfg: ModelConfig, params, tokenizer, *, seq_len: int,
                  add_bos: bool, seed: int) -> list[dict]:
  """The end of a training run: process 0 samples `s.prompts` from the gathered parameters
  and writes the run folder's samples.txt (prompt i drawn with seed + i)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    params = multihost_utils.process_allgather(params, tiled=True)  # collective: every process
  if jax.process_index() != 0:
    return []
  sampler = Sampler(model_cfg, jax.device_get(params), context_length(model_cfg, seq_len))
  out = []
  for i, prompt in enumerate(s.prompts):
    new = sampler.generate(tokenizer.prompt_ids(prompt, add_bos), s.max_new_tokens,
                           temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                           seed=seed + i, stop_id=tokenizer.eos_id)
    out.append({"prompt": prompt, "text": tokenizer.decode(new)})
  blocks = [f"=== prompt: {o['prompt']!r} (temperature {s.temperature}, top_k {s.top_k}, "
            f"top_p {s.top_p})\n{o['prompt']}{o['text']}\n" for o in out]
  run.write_samples("\n".join(blocks))
  return out
