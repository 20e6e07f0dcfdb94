"""Sampling (train/sample.py): temperature, top-k/top-p, the context limit, the config."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from llm_input.errors import ConfigError
from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.train import sample as sample_lib


def planted_model(**kw):
  """The small model of the planted-bug tests (longer context, larger init than `small`)."""
  return ModelConfig(**{**dict(vocab_size=61, d_model=32, num_layers=2, num_heads=4, max_len=64,
                               init_std=0.3), **kw})


# -- planted-bug tests (each fails with the bug its docstring names; docs/testing.md) ----

@pytest.mark.planted
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_filtered_logits_are_logits_over_temperature(temperature):
  """Bug: logits multiplied by the temperature instead of divided."""
  logits = jnp.asarray([[2.0, 1.0, -0.5, 0.25]])
  np.testing.assert_allclose(np.asarray(sample_lib.filter_logits(logits, temperature, 0, 1.0)),
                             np.asarray(logits) / temperature, rtol=1e-6)


@pytest.mark.planted
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_draws_follow_softmax_of_logits_over_temperature(temperature):
  """Frequencies of 20,000 draws match softmax(l / T). Tolerance: 5 standard errors of a
  binomial frequency, sqrt(p(1-p)/n) <= 0.0036, so 0.018; multiplying by T instead moves the
  probabilities by 0.2 or more here."""
  logits = jnp.asarray([[1.5, 0.5, 0.0, -1.0]])
  n = 20000
  keys = jax.random.split(jax.random.key(7), n)
  draws = np.asarray(jax.vmap(lambda k: sample_lib.choose(logits, k, temperature, 0, 1.0))(keys)).ravel()
  freq = np.bincount(draws, minlength=4) / n
  want = np.asarray(jax.nn.softmax(np.asarray(logits)[0] / temperature))
  assert np.abs(freq - want).max() < 5 * math.sqrt(0.25 / n), (freq, want)


@pytest.mark.planted
def test_top_k_and_top_p_per_row_and_at_the_boundary():
  """Filtering is per row of a batch (a sort, softmax or min over the whole batch would mix
  rows), removed tokens get -inf (not +inf), and top_p keeps a token only while the mass
  before it is strictly below p."""
  # a peaked row and a flat one: mixed together, the peaked row's mass would cut the flat row
  mixed = jnp.log(jnp.asarray([[0.6, 0.3, 0.05, 0.05], [0.2, 0.22, 0.3, 0.28]]))
  kept = np.isfinite(np.asarray(sample_lib.filter_logits(mixed, 1.0, 0, 0.5)))
  assert kept.tolist() == [[True, False, False, False], [False, False, True, True]]
  logits = jnp.log(jnp.asarray([[0.5, 0.25, 0.125, 0.125], [0.125, 0.125, 0.25, 0.5]]))
  top_p = np.asarray(sample_lib.filter_logits(logits, 1.0, 0, 0.5))
  assert (np.isfinite(top_p) == [[True, False, False, False], [False, False, False, True]]).all()
  assert (top_p[~np.isfinite(top_p)] == -np.inf).all()
  top_p = np.asarray(sample_lib.filter_logits(logits, 1.0, 0, 0.75))  # 0.5 + 0.25 reaches 0.75
  assert np.isfinite(top_p).sum(axis=1).tolist() == [2, 2]
  top_k = np.asarray(sample_lib.filter_logits(logits, 1.0, 2, 1.0))
  assert np.isfinite(top_k).tolist() == [[True, True, False, False], [False, False, True, True]]
  assert (top_k[~np.isfinite(top_k)] == -np.inf).all()
  assert np.asarray(sample_lib.choose(logits, jax.random.key(0), 0.0, 0, 1.0)).tolist() == [0, 3]


@pytest.mark.planted
def test_generation_stops_at_the_context_and_keeps_the_prompts_tail():
  """Bug: generating past the context (the cache and the learned positions end there), one token
  when none was asked for, a long prompt cut at the wrong end, or `stop_id` ignored or obeyed
  whenever it is set. Context 8: a 5-token prompt
  has room for 3 new tokens; a 12-token prompt keeps its last 7 and gets 1."""
  cfg = planted_model(max_len=8, init_std=0.3)
  params = nnx.to_pure_dict(nnx.state(transformer.create(cfg), nnx.Param))
  sampler = sample_lib.Sampler(cfg, params, context=8)
  prompt = [1, 5, 9, 12, 7]
  assert sampler.generate(prompt, 0) == []
  assert sampler.generate(prompt, 10) == sample_lib.generate_without_cache(cfg, params, prompt, 3)
  long_prompt = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
  assert [sampler.kept_prompt(n) for n in (1, 7, 8, 12)] == [1, 7, 7, 7]
  assert sampler.generate(long_prompt, 10) == sample_lib.generate_without_cache(cfg, params, long_prompt[-7:], 1)
  # stop_id ends the output at its first occurrence, and only there
  greedy = sampler.generate(prompt, 3)
  stop = greedy[1]
  assert sampler.generate(prompt, 3, stop_id=stop) == greedy[:greedy.index(stop) + 1]
  absent = next(i for i in range(cfg.vocab_size) if i not in greedy)
  assert sampler.generate(prompt, 3, stop_id=absent) == greedy


@pytest.mark.planted
def test_prompts_of_many_lengths_share_one_prefill_and_one_decode_compilation():
  """Bug: the cache's index left at the padded prompt length (decoding would write past the
  prompt and leave its padding visible), the first token taken from the padding's last position,
  or the cache sized per prompt (one decode compilation per prompt length). Prompts of 1 to 40
  tokens pad to 64 and share one prefill; 70 tokens pad to 80, the context; the greedy
  continuation equals full recomputation at every length (learned positions: a token read at
  the wrong position changes its logits)."""
  cfg = planted_model(max_len=80, positions="learned")
  params = nnx.to_pure_dict(nnx.state(transformer.create(cfg), nnx.Param))
  sampler = sample_lib.Sampler(cfg, params, context=80)
  assert [sample_lib.prefill_length(n, 80) for n in (1, 40, 64, 65, 70)] == [64, 64, 64, 80, 80]
  rng = np.random.default_rng(0)
  before = (sample_lib._prefill._cache_size(), sample_lib._decode._cache_size())
  for length in (1, 40):
    prompt = rng.integers(0, cfg.vocab_size, size=length).tolist()
    assert sampler.generate(prompt, 3) == sample_lib.generate_without_cache(cfg, params, prompt, 3), length
  after = (sample_lib._prefill._cache_size(), sample_lib._decode._cache_size())
  assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
  prompt = rng.integers(0, cfg.vocab_size, size=70).tolist()
  assert sampler.generate(prompt, 3) == sample_lib.generate_without_cache(cfg, params, prompt, 3)


@pytest.mark.planted
@pytest.mark.parametrize("field, value, message", [
    ("max_new_tokens", 0, r"sample.max_new_tokens must be an integer >= 1, got 0"),
    ("max_new_tokens", 2.0, r"sample.max_new_tokens must be an integer >= 1, got 2.0"),
    ("temperature", -0.1, r"sample.temperature must be >= 0 \(0 = greedy\), got -0.1"),
    ("top_k", -1, r"sample.top_k must be an integer >= 0 \(0 = all\), got -1"),
    ("top_k", 1.5, r"sample.top_k must be an integer >= 0 \(0 = all\), got 1.5"),
    ("top_p", 0.0, r"sample.top_p must be in \(0, 1\] \(1 = all\), got 0.0"),
    ("top_p", 1.5, r"sample.top_p must be in \(0, 1\] \(1 = all\), got 1.5"),
    ("prompts", ("to be", 3), r"sample.prompts must be strings, got \['to be', 3\]")])
def test_sample_config_refuses_each_bad_value_by_name(field, value, message):
  """Bug: a sampling bound off by one (greedy temperature 0, top_p 1 or one new token refused;
  top_p 0 or a fractional count accepted) or a message that does not name the field."""
  with pytest.raises(ConfigError, match=f"^{message}$"):
    sample_lib.SampleConfig(**{field: value})
  edges = dict(max_new_tokens=1, temperature=0.0, top_k=0, top_p=1.0, prompts=("to be",))
  sample_lib.SampleConfig(**edges)  # every edge of every range is accepted
  sample_lib.SampleConfig(top_p=1e-3)


@pytest.mark.planted
def test_sample_config_from_config_reads_every_field():
  cfg = ml_collections.ConfigDict(dict(sample=dict(prompts=["to be"], max_new_tokens=7, temperature=0.5,
                                                   top_k=3, top_p=0.9)))
  assert sample_lib.SampleConfig.from_config(cfg) == sample_lib.SampleConfig(
      prompts=("to be",), max_new_tokens=7, temperature=0.5, top_k=3, top_p=0.9)
