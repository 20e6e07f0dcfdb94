"""The model against references: numpy attention, closed-form parameter counts, invariances."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from llm_input.model import attention as attention_lib
from llm_input.model import positions as positions_lib
from llm_input.model import transformer
from llm_input.model.config import ConfigError, ModelConfig

from helpers import numpy_rope, spy
from helpers import paper_sinusoidal


def small(**kw):
  base = dict(vocab_size=61, d_model=32, num_layers=2, num_heads=4, max_len=16)
  base.update(kw)
  return ModelConfig(**base)


def numpy_attention(q, k, v, segment_ids, causal, scaled=True):
  """Plain numpy: per head, softmax(q k^T / sqrt(d_head) + mask) v (q k^T unscaled if not
  `scaled`)."""
  batch, length, heads, d_head = q.shape
  kv_heads = k.shape[2]
  out = np.zeros_like(q, dtype=np.float64)
  weights = np.zeros((batch, heads, length, length))
  for b in range(batch):
    for h in range(heads):
      kh = h // (heads // kv_heads)
      scores = q[b, :, h, :].astype(np.float64) @ k[b, :, kh, :].T.astype(np.float64)
      if scaled:
        scores /= math.sqrt(d_head)
      allowed = segment_ids[b][:, None] == segment_ids[b][None, :]
      if causal:
        allowed &= np.tril(np.ones((length, length), bool))
      scores = np.where(allowed, scores, -np.inf)
      w = np.exp(scores - scores.max(-1, keepdims=True))
      w /= w.sum(-1, keepdims=True)
      weights[b, h] = w
      out[b, :, h, :] = w @ v[b, :, kh, :]
  return out, weights


@pytest.mark.parametrize("kv_heads", [4, 2, 1])
@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_numpy_reference(kv_heads, causal):
  rng = np.random.default_rng(0)
  batch, length, heads, d_head = 2, 7, 4, 8
  q = rng.normal(size=(batch, length, heads, d_head)).astype(np.float32)
  k = rng.normal(size=(batch, length, kv_heads, d_head)).astype(np.float32)
  v = rng.normal(size=(batch, length, kv_heads, d_head)).astype(np.float32)
  segment_ids = np.array([[1, 1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 1, 1, 0]])
  mask = attention_lib.attention_mask(jnp.asarray(segment_ids), causal)
  out, weights = attention_lib.reference_attention(q, k, v, mask)
  want_out, want_weights = numpy_attention(q, k, v, segment_ids, causal)
  np.testing.assert_allclose(np.asarray(out), want_out, atol=2e-5, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(weights), want_weights, atol=2e-6)
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-6)
  fused = attention_lib.fused_attention(q, k, v, mask)
  np.testing.assert_allclose(np.asarray(fused), np.asarray(out), atol=2e-5, rtol=1e-5)


def _random_parameters(module, rng, names) -> dict[str, np.ndarray]:
  """Sets each named parameter of `module` to N(0, 0.3^2) draws (at init biases are zero and
  kernels small, which would hide a dropped bias or a wrong scale) and returns them."""
  weights = {}
  for name in names:
    var = getattr(module, name)
    weights[name] = rng.normal(scale=0.3, size=var.shape).astype(np.float32)
    var[...] = jnp.asarray(weights[name])
  return weights


@pytest.mark.parametrize("positions", ["rope", "learned"])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_attention_module_equals_numpy_with_every_parameter_nonzero(positions, dtype, monkeypatch):
  """The whole module (projections, biases, RoPE, grouped heads, output projection) against
  numpy, with random biases: at init they are zero, so a bias subtracted or dropped would
  pass every other test. bfloat16 must stay bfloat16 (a float32 bias promoting q to float32
  would silently run the scores in float32) and agree with numpy to its rounding."""
  cfg = small(num_kv_heads=2, positions=positions, use_bias=True, dtype=dtype)
  attn = attention_lib.Attention(cfg, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(3)
  weights = _random_parameters(attn, rng, ("q_kernel", "k_kernel", "v_kernel", "o_kernel",
                                           "q_bias", "k_bias", "v_bias", "o_bias"))
  x = rng.normal(size=(2, 6, cfg.d_model)).astype(np.float32)
  positions_bxl = np.array([[0, 1, 2, 0, 1, 2], [5, 6, 7, 8, 9, 10]])
  segment_ids = np.array([[1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 1, 1]])
  attend_dtypes = []
  spy(monkeypatch, attention_lib, "_attend", lambda q, k, v, *_: attend_dtypes.append({q.dtype, k.dtype, v.dtype}))
  out, _, _ = attn(jnp.asarray(x), jnp.asarray(positions_bxl), jnp.asarray(segment_ids))
  assert out.dtype == jnp.dtype(dtype)
  assert attend_dtypes and all(d == {jnp.dtype(dtype)} for d in attend_dtypes)  # q, k and v too

  w = {k: v.astype(np.float64) for k, v in weights.items()}
  q = np.einsum("bld,dhk->blhk", x, w["q_kernel"]) + w["q_bias"]
  k = np.einsum("bld,dhk->blhk", x, w["k_kernel"]) + w["k_bias"]
  v = np.einsum("bld,dhk->blhk", x, w["v_kernel"]) + w["v_bias"]
  if positions == "rope":
    q, k = numpy_rope(q, positions_bxl, cfg.rope_base), numpy_rope(k, positions_bxl, cfg.rope_base)
  heads_out, _ = numpy_attention(q, k, v, segment_ids, causal=True)
  want = np.einsum("blhk,hkd->bld", heads_out, w["o_kernel"]) + w["o_bias"]
  # bfloat16 rounds x, the kernels, q/k/v, the rotated q/k, the weights and the heads' output
  # (2^-9 each): measured 2.3 x 2^-8 of the largest output, bound 4 x 2^-8; float32: 2.4e-6
  tolerance = 1e-4 if dtype == "float32" else 4 * 2 ** -8 * np.abs(want).max()
  np.testing.assert_allclose(np.asarray(out, np.float64), want, atol=tolerance)


@pytest.mark.parametrize("kv_heads", [4, 1])
@pytest.mark.parametrize("length,block", [(8, 2), (8, 4), (6, 4), (8, 0)])
def test_blocked_causal_attention_equals_reference_with_gradients(kv_heads, length, block):
  rng = np.random.default_rng(1)
  batch, heads, d_head = 2, 4, 8
  q = jnp.asarray(rng.normal(size=(batch, length, heads, d_head)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(batch, length, kv_heads, d_head)), jnp.float32)
  v = jnp.asarray(rng.normal(size=(batch, length, kv_heads, d_head)), jnp.float32)
  # packed rows: document boundaries fall inside and across query blocks
  segment_ids = jnp.asarray([[1] * 3 + [2] * (length - 3), [1] * (length - 1) + [2]])
  mask = attention_lib.attention_mask(segment_ids, causal=True)
  want = np.asarray(attention_lib.reference_attention(q, k, v, mask)[0])
  got = np.asarray(attention_lib.blocked_attention(q, k, v, mask, block))
  np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-6)
  np.testing.assert_allclose(got, numpy_attention(np.asarray(q), np.asarray(k), np.asarray(v),
                                                  np.asarray(segment_ids), True)[0], atol=2e-5)
  cotangent = jnp.asarray(rng.normal(size=want.shape), jnp.float32)
  grads = lambda f: jax.grad(lambda *a: (f(*a) * cotangent).sum(), argnums=(0, 1, 2))(q, k, v)  # noqa: E731
  want_grads = grads(lambda *a: attention_lib.reference_attention(*a, mask)[0])
  got_grads = grads(lambda *a: attention_lib.blocked_attention(*a, mask, block))
  # and the written-out softmax backward against jax.nn.softmax's autodiff
  def autodiff(q, k, v):
    groups = heads // kv_heads
    qg = q.reshape(batch, length, kv_heads, groups, d_head)
    s = jnp.einsum("blkgd,bskd->bkgls", qg, k) / math.sqrt(d_head)
    w = jax.nn.softmax(jnp.where(mask[:, :, None], s, -1e30), axis=-1)
    return jnp.einsum("bkgls,bskd->blkgd", w, v).reshape(q.shape)
  plain_grads = grads(autodiff)
  for got_g, want_g, plain_g in zip(got_grads, want_grads, plain_grads):
    np.testing.assert_allclose(np.asarray(got_g), np.asarray(want_g), atol=1e-5)
    np.testing.assert_allclose(np.asarray(want_g), np.asarray(plain_g), atol=1e-5)


def test_model_with_query_blocks_equals_one_score_matrix():
  blocked = transformer.create(small(attention_block=4))
  whole = _with_params_of(small(attention_impl="reference"), blocked)
  ids = jnp.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3]])
  segment_ids = jnp.array([[1] * 6 + [2] * 10])
  positions_bxl = jnp.array([list(range(6)) + list(range(10))])
  np.testing.assert_allclose(np.asarray(blocked(ids, positions_bxl, segment_ids)),
                             np.asarray(whole(ids, positions_bxl, segment_ids)), atol=1e-5)


@pytest.mark.parametrize("impl, causal, want", [
    ("blocked", True, "blocked_attention"), ("reference", True, "reference_attention"),
    ("fused", True, "fused_attention"), ("blocked", False, "reference_attention")])
def test_the_configured_attention_implementation_is_the_one_that_runs(impl, causal, want, monkeypatch):
  """Bug: a dispatch that ignores `attention_impl` (every implementation gives the same numbers,
  so only the call shows it): training on the full score matrix, or never on the fused kernel.
  Blocked attention needs a causal mask; reading the weights always takes the reference."""
  calls = []
  for name in ("blocked_attention", "reference_attention", "fused_attention"):
    spy(monkeypatch, attention_lib, name, lambda *args, name=name: calls.append(name))
  model = transformer.create(small(attention_impl=impl, causal=causal, attention_block=4))
  ids = jnp.array([[3, 1, 4, 1, 5, 9, 2, 6]])
  model(ids)
  assert set(calls) == {want}
  calls.clear()
  model(ids, return_attention=True)
  assert set(calls) == {"reference_attention"}


def test_scores_scaled_by_d_head_not_d_model():
  # One query, two keys: weight ratio exp((s1 - s2) / sqrt(d_head)) pins the scale.
  d_head = 16
  q = np.zeros((1, 2, 1, d_head), np.float32)
  q[0, 1, 0, 0] = 1.0
  k = np.zeros((1, 2, 1, d_head), np.float32)
  k[0, 0, 0, 0] = 8.0  # score 8 with query 1; key 1 scores 0
  v = np.zeros_like(k)
  mask = attention_lib.attention_mask(jnp.ones((1, 2), jnp.int32), causal=True)
  _, weights = attention_lib.reference_attention(q, k, v, mask)
  ratio = float(weights[0, 0, 1, 0] / weights[0, 0, 1, 1])
  assert ratio == pytest.approx(math.exp(8.0 / math.sqrt(d_head)), rel=1e-5)
  assert ratio != pytest.approx(math.exp(8.0 / math.sqrt(d_head * 4)), rel=1e-2)


@pytest.mark.parametrize("impl", ["blocked", "reference", "fused"])
def test_unscaled_attention_is_softmax_of_raw_scores_in_every_implementation(impl):
  """`attention_scale="none"` (the sqrt(d_k) experiment's arm): each implementation, inside
  the model, computes softmax(q k^T) v. Bug guarded: a path that keeps 1/sqrt(d_head) (the
  experiment would then compare a model with itself) or applies it twice."""
  cfg = small(num_kv_heads=2, attention_impl=impl, attention_scale="none", attention_block=3,
              max_len=6, use_bias=False)
  assert cfg.score_scale == 1.0 and small().score_scale == pytest.approx(1 / math.sqrt(8))
  attn = attention_lib.Attention(cfg, rngs=nnx.Rngs(0))
  rng = np.random.default_rng(5)
  weights = _random_parameters(attn, rng, ("q_kernel", "k_kernel", "v_kernel", "o_kernel"))
  x = rng.normal(size=(2, 6, cfg.d_model)).astype(np.float32)
  segment_ids = np.array([[1, 1, 1, 2, 2, 2], [1, 1, 1, 1, 1, 1]])
  positions_bxl = np.array([[0, 1, 2, 0, 1, 2], [0, 1, 2, 3, 4, 5]])
  out, _, _ = attn(jnp.asarray(x), jnp.asarray(positions_bxl), jnp.asarray(segment_ids))
  w = {k: v.astype(np.float64) for k, v in weights.items()}
  q, k, v = (np.einsum("bld,dhk->blhk", x, w[f"{n}_kernel"]) for n in "qkv")
  for scaled in (False, True):
    heads_out, _ = numpy_attention(q, k, v, segment_ids, causal=True, scaled=scaled)
    want = np.einsum("blhk,hkd->bld", heads_out, w["o_kernel"])
    close = np.allclose(np.asarray(out, np.float64), want, atol=1e-4)
    assert close == (not scaled), f"{impl}: {'scaled' if scaled else 'unscaled'} reference"


def test_bfloat16_scores_are_computed_and_softmaxed_in_float32():
  """Bug: the q.k einsum returning bfloat16, so the scores are rounded (relative 2^-9) before
  the softmax. Scores of magnitude ~8 then move by up to ~0.016 / sqrt(d_head), changing the
  weights by ~0.5% of their size; products of bf16 inputs summed in float32 are exact to ~1e-7,
  so the weights must match float64 arithmetic on the same bf16-rounded q and k to 1e-5."""
  rng = np.random.default_rng(2)
  batch, length, heads, d_head = 2, 8, 4, 8
  q = jnp.asarray(3 * rng.normal(size=(batch, length, heads, d_head)), jnp.bfloat16)
  k = jnp.asarray(rng.normal(size=(batch, length, 2, d_head)), jnp.bfloat16)
  v = jnp.asarray(rng.normal(size=(batch, length, 2, d_head)), jnp.bfloat16)
  segment_ids = np.ones((batch, length), np.int32)
  mask = attention_lib.attention_mask(jnp.asarray(segment_ids), causal=True)
  _, weights = attention_lib.reference_attention(q, k, v, mask)
  assert weights.dtype == jnp.float32
  as64 = lambda a: np.asarray(a.astype(jnp.float32)).astype(np.float64)  # noqa: E731
  _, want = numpy_attention(as64(q), as64(k), as64(v), segment_ids, causal=True)
  assert np.abs(as64(q)).max() > 8  # scores large enough for bf16 rounding to show
  np.testing.assert_allclose(np.asarray(weights), want, atol=1e-5)


def test_model_attention_weights_come_from_the_module():
  cfg = small()
  model = transformer.create(cfg)
  ids = jnp.array([[3, 7, 1, 9, 4, 4]])
  logits, weights = model(ids, return_attention=True)
  assert weights.shape == (cfg.num_layers, 1, cfg.num_heads, 6, 6)
  np.testing.assert_allclose(np.asarray(weights.sum(-1)), 1.0, atol=1e-5)
  assert np.all(np.triu(np.asarray(weights[0, 0, 0]), k=1) == 0)  # causal: nothing above diagonal
  np.testing.assert_array_equal(np.asarray(logits), np.asarray(model(ids)))


@pytest.mark.parametrize("positions", ["none", "learned", "sinusoidal", "rope"])
def test_causality_future_tokens_do_not_change_past_logits(positions):
  model = transformer.create(small(positions=positions))
  ids = jnp.array([[5, 8, 13, 21, 34, 55, 2, 3]])
  changed = ids.at[0, 5:].set(jnp.array([1, 1, 1]))
  a, b = model(ids), model(changed)
  np.testing.assert_allclose(np.asarray(a[0, :5]), np.asarray(b[0, :5]), atol=1e-6)
  assert not np.allclose(np.asarray(a[0, 5:]), np.asarray(b[0, 5:]), atol=1e-4)


def test_without_positions_and_mask_permuting_input_permutes_output():
  model = transformer.create(small(positions="none", causal=False))
  ids = jnp.array([[5, 8, 13, 21, 34, 55, 2, 3]])
  perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
  out = np.asarray(model(ids))
  out_perm = np.asarray(model(ids[:, perm]))
  np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)


# Positions with tokens vs positions left behind: tests/test_model.py::test_positions_travel_with_their_tokens


def test_rope_score_depends_only_on_offset():
  rng = np.random.default_rng(1)
  q = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)
  k = jnp.asarray(rng.normal(size=(1, 1, 1, 16)), jnp.float32)

  def score(i, j):
    qi = positions_lib.apply_rope(q, jnp.array([[i]]), 10000.0)
    kj = positions_lib.apply_rope(k, jnp.array([[j]]), 10000.0)
    return float(jnp.sum(qi * kj))

  for shift in (1, 5, 100):
    assert score(7, 3) == pytest.approx(score(7 + shift, 3 + shift), abs=1e-4)
  assert abs(score(7, 3) - score(7, 5)) > 1e-3  # and it does depend on the offset


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope", "none"])
def test_packed_documents_match_each_document_alone(positions):
  model = transformer.create(small(positions=positions))
  doc_a = jnp.array([4, 9, 16, 25, 36])
  doc_b = jnp.array([7, 14, 21])
  packed = jnp.concatenate([doc_a, doc_b])[None]
  segment_ids = jnp.array([[1] * 5 + [2] * 3])
  positions_bxl = jnp.array([[0, 1, 2, 3, 4, 0, 1, 2]])
  packed_logits = np.asarray(model(packed, positions_bxl, segment_ids))
  alone_a = np.asarray(model(doc_a[None]))
  alone_b = np.asarray(model(doc_b[None]))
  np.testing.assert_allclose(packed_logits[0, :5], alone_a[0], atol=1e-5)
  np.testing.assert_allclose(packed_logits[0, 5:], alone_b[0], atol=1e-5)


def _with_params_of(cfg, source):
  model = transformer.create(cfg)
  nnx.update(model, nnx.state(source, nnx.Param))
  return model


@pytest.mark.parametrize("remat", ["none", "full"])
def test_scanned_and_unrolled_stacks_agree(remat):
  cfg = small(num_layers=3, remat=remat)
  scanned = transformer.create(cfg)
  unrolled = _with_params_of(small(num_layers=3, scan_layers=False, remat=remat), scanned)
  ids = jnp.array([[1, 2, 3, 4, 5, 6]])
  np.testing.assert_allclose(np.asarray(scanned(ids)), np.asarray(unrolled(ids)), atol=1e-5)


# bfloat16 vs float32: tests/test_model.py::test_bfloat16_error_is_what_bfloat16_rounding_predicts


@pytest.mark.parametrize("impl", ["reference", "fused"])
def test_kv_cache_decoding_equals_full_recompute(impl):
  cfg = small(positions="rope", num_kv_heads=2, attention_impl=impl)
  model = transformer.create(cfg)
  ids = jnp.array([[3, 1, 4, 1, 5, 9, 2, 6]])
  full = np.asarray(model(ids))
  cache = model.init_cache(batch=1, max_len=8)
  logits, cache = model(ids[:, :3], cache=cache)  # prefill three tokens
  steps = [np.asarray(logits)]
  for t in range(3, 8):
    logits, cache = model(ids[:, t:t + 1], jnp.array([[t]]), cache=cache)
    steps.append(np.asarray(logits))
  np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def closed_form_params(cfg: ModelConfig) -> int:
  d, h, k, dh, f, v = cfg.d_model, cfg.num_heads, cfg.kv_heads, cfg.d_head, cfg.mlp_width, cfg.vocab_size
  bias = 1 if cfg.use_bias else 0
  norm = d * (2 if cfg.norm == "layernorm" else 1)
  attention = d * h * dh + 2 * d * k * dh + h * dh * d + bias * (h * dh + 2 * k * dh + d)
  if cfg.mlp == "gelu":
    mlp = 2 * d * f + bias * (f + d)
  else:
    mlp = 3 * d * f + bias * (2 * f + d)
  per_layer = 2 * norm + attention + mlp
  embed = v * d + (0 if cfg.tie_embeddings else d * v)
  positions = cfg.max_len * d if cfg.positions == "learned" else 0
  return embed + positions + cfg.num_layers * per_layer + norm


GPT2_SMALL = dict(vocab_size=50257, d_model=768, num_layers=12, num_heads=12, max_len=1024)


def test_initial_weights_have_the_configured_std_and_independent_draws():
  """Bug: GPT-2's residual scaling lost (attention and MLP output kernels at init_std instead of
  init_std / sqrt(2 * num_layers)), a wrong std, a bias or norm scale not at 0 / 1, or two
  kernels (q and k, or two layers) drawn from one key. A std estimated from n draws has
  relative standard error 1/sqrt(2n), so each is checked per layer to 5 of those (4-11%; the
  residual scaling is a factor sqrt(8) = 2.8 here); independent kernels correlate by ~1/sqrt(n)."""
  std, layers = 0.05, 4
  cfg = small(d_model=64, num_layers=layers, mlp="swiglu", use_bias=True, tie_embeddings=False,
              positions="learned", init_std=std)
  params = {"/".join(map(str, path)): np.asarray(value[...])
            for path, value in nnx.to_flat_state(nnx.state(transformer.create(cfg), nnx.Param))}
  out = std / math.sqrt(2 * layers)
  want_std = {"embedding/table": std, "embedding/head": std, "positions/table": std / 2,
              "blocks/attention/q_kernel": std, "blocks/attention/k_kernel": std,
              "blocks/attention/v_kernel": std, "blocks/attention/o_kernel": out,
              "blocks/mlp/up_kernel": std, "blocks/mlp/gate_kernel": std,
              "blocks/mlp/down_kernel": out}
  for name, value in params.items():
    per_layer = list(value) if name.startswith("blocks/") else [value]
    for layer, array in enumerate(per_layer):
      if name in want_std:
        bound = 5 / math.sqrt(2 * array.size)
        assert array.std() == pytest.approx(want_std[name], rel=bound), (name, layer)
      else:  # biases start at 0, norm scales at 1
        want = 1.0 if name.endswith("scale") else 0.0
        np.testing.assert_array_equal(array, want, err_msg=name)
  assert set(want_std) <= set(params)
  kernels = [(name, layer, array.ravel()) for name, value in params.items() if name in want_std
             and name.startswith("blocks/") for layer, array in enumerate(value)]
  for i, (name_a, layer_a, a) in enumerate(kernels):
    for name_b, layer_b, b in kernels[i + 1:]:
      if a.size == b.size:
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(a.size), (name_a, layer_a, name_b, layer_b)


@pytest.mark.parametrize("cfg", [
    ModelConfig(**GPT2_SMALL),
    ModelConfig(**dict(GPT2_SMALL, d_model=1024, num_layers=24, num_heads=16)),
    small(mlp="swiglu", norm="rmsnorm", use_bias=False, tie_embeddings=False, positions="rope"),
    small(num_kv_heads=1, positions="sinusoidal"),
    small(num_kv_heads=2, d_mlp=50, positions="none"),
], ids=["gpt2_small", "gpt2_medium", "llama_like", "mqa", "gqa"])
def test_param_count_matches_closed_form(cfg):
  assert transformer.count_params(cfg) == closed_form_params(cfg)


def test_gpt2_small_has_124_439_808_parameters():
  assert transformer.count_params(ModelConfig(**GPT2_SMALL)) == 124_439_808


def test_every_parameter_names_its_axes():
  known = {"vocab", "embed", "heads", "kv_heads", "head_dim", "mlp", "layers", None}
  for name, shape, axes, _ in transformer.param_table(small(tie_embeddings=False, mlp="swiglu")):
    assert len(axes) == len(shape), name
    assert set(axes) <= known, (name, axes)
    if name.startswith("blocks."):
      assert axes[0] == "layers", name


@pytest.mark.parametrize("bad, field", [
    (dict(d_model=30, num_heads=4), "model.num_heads"),
    (dict(num_kv_heads=3), "model.num_kv_heads"),
    (dict(positions="alibi"), "model.positions"),
    (dict(mlp="relu"), "model.mlp"),
    (dict(norm="batchnorm"), "model.norm"),
    (dict(attention_impl="flash"), "model.attention_impl"),
    (dict(dtype="float16"), "model.dtype"),
    (dict(remat="some"), "model.remat"),
    (dict(attention_block=-1), "model.attention_block"),
    (dict(attention_block=0), "model.attention_block"),
    (dict(attention_scale="d_head"), "model.attention_scale"),
    (dict(vocab_size=0), "model.vocab_size"),
])
def test_invalid_config_fields_raise_clear_errors(bad, field):
  with pytest.raises(ConfigError) as err:
    small(**bad)
  assert str(err.value).startswith(field)


def planted_model(**kw):
  """The small model of the planted-bug tests (longer context, larger init than `small`)."""
  return ModelConfig(**{**dict(vocab_size=61, d_model=32, num_layers=2, num_heads=4, max_len=64,
                               init_std=0.3), **kw})


# -- planted-bug tests (each fails with the bug its docstring names; docs/testing.md) ----

@pytest.mark.planted
def test_apply_rope_equals_an_explicit_numpy_rotation():
  """Bug: wrong frequencies (base^(-i/d)), sin/cos swapped, the pairs mixed up, or bfloat16
  queries and keys coming back as float32 (the scores would then silently run in float32)."""
  rng = np.random.default_rng(0)
  d_head, base = 8, 10000.0
  x = rng.normal(size=(2, 5, 3, d_head)).astype(np.float32)
  pos = np.array([[0, 1, 2, 7, 100], [3, 3, 9, 40, 1000]])
  got = np.asarray(positions_lib.apply_rope(jnp.asarray(x), jnp.asarray(pos), base))
  np.testing.assert_allclose(got, numpy_rope(x, pos, base), atol=2e-5)
  # bfloat16 in, bfloat16 out: rotated in float32, then rounded once (relative error <= 2^-8)
  x16 = jnp.asarray(x, jnp.bfloat16)
  got16 = positions_lib.apply_rope(x16, jnp.asarray(pos), base)
  assert got16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got16, np.float32), numpy_rope(np.asarray(x16, np.float32), pos, base),
                             rtol=2 ** -8, atol=2e-5)


@pytest.mark.planted
def test_causal_rope_model_is_invariant_to_shifting_every_position():
  """Bug: RoPE applied to queries but not keys (or keys but not queries): scores then depend on
  absolute positions, and shifting every position changes the logits."""
  model = transformer.create(planted_model(positions="rope"))
  ids = jnp.array([[3, 14, 15, 9, 26, 5, 35, 8, 9, 7]])
  base = jnp.arange(10)[None]
  ref = np.asarray(model(ids, base))
  for shift in (1, 17):
    np.testing.assert_allclose(np.asarray(model(ids, base + shift)), ref, atol=2e-5)
  # and order matters: the same tokens at other relative offsets give other logits
  assert np.abs(np.asarray(model(ids, base * 2)) - ref).max() > 1e-2


@pytest.mark.planted
@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
def test_positions_travel_with_their_tokens(positions):
  """Without a causal mask, permuting tokens together with their positions permutes the
  output exactly; permuting tokens alone (positions stay) does not, by a clear margin.
  Bugs: positions ignored, or read from the array index instead of the positions given."""
  model = transformer.create(planted_model(positions=positions, causal=False, init_std=0.5))
  ids = jnp.array([[5, 8, 13, 21, 34, 55, 2, 3]])
  perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
  pos = jnp.arange(8)[None]
  out = np.asarray(model(ids, pos))
  moved = np.asarray(model(ids[:, perm], pos[:, perm]))
  np.testing.assert_allclose(moved, out[:, perm], atol=2e-5)
  stayed = np.asarray(model(ids[:, perm], pos))
  assert np.abs(stayed - out[:, perm]).max() > 0.05 * np.abs(out).max()


@pytest.mark.planted
def test_bfloat16_error_is_what_bfloat16_rounding_predicts():
  """Bug: a float32 path silently running in bfloat16 (or the reverse) where it should not.
  bfloat16 keeps 8 significant bits (relative rounding 2^-9); through two blocks the logits
  move by a small multiple of that times their scale. Measured: max error / max |logit| =
  0.019 for this model; the bound 0.06 is 16 x 2^-8, and 0 would mean no bf16 at all."""
  cfg = planted_model(mlp="swiglu", positions="rope", norm="rmsnorm", init_std=0.02)
  f32 = transformer.create(cfg)
  bf16 = nnx.merge(nnx.split(transformer.abstract(planted_model(mlp="swiglu", positions="rope", norm="rmsnorm",
                                                          init_std=0.02, dtype="bfloat16")), nnx.Param)[0],
                   nnx.state(f32, nnx.Param))
  ids = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8]])
  a, b = np.asarray(f32(ids)), np.asarray(bf16(ids))
  relative = np.abs(a - b).max() / np.abs(a).max()
  assert 2 ** -12 < relative < 16 * 2 ** -8, relative


@pytest.mark.planted
def test_sinusoidal_positions_equal_the_paper_formula():
  """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same), for even and odd d (an odd
  last column is zero). Mutants of the frequencies, the interleaving or the padding survived
  every invariance test."""
  pos = np.array([[0, 1, 5, 63]])
  for d in (8, 9):
    np.testing.assert_allclose(np.asarray(positions_lib.sinusoidal(jnp.asarray(pos), d)),
                               paper_sinusoidal(pos, d), atol=1e-5)


@pytest.mark.planted
@pytest.mark.parametrize("kind", ["learned", "sinusoidal", "none"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_absolute_positions_add_the_position_vector_and_keep_the_dtype(kind, dtype):
  """x + P[position], not x - P (a different, unpublished encoding for sinusoidal), and a
  bfloat16 model stays bfloat16 (a float32 table would promote every later layer)."""
  cfg = planted_model(positions=kind, d_model=8, max_len=16)
  module = positions_lib.AbsolutePositions(cfg, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 8)), dtype)
  pos = np.array([[0, 1, 2], [7, 3, 15]])
  got = module(x, jnp.asarray(pos))
  assert got.dtype == dtype
  if kind == "learned":
    table = np.asarray(module.table[...])[pos]
  elif kind == "sinusoidal":
    table = paper_sinusoidal(pos, 8)
  else:
    table = np.zeros((2, 3, 8))
  want = np.asarray(x, np.float32) + table
  atol = 1e-6 if dtype == jnp.float32 else 2 ** -8 * np.abs(want).max()  # one bfloat16 rounding
  np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=atol)


@pytest.mark.planted
def test_blocked_attention_really_splits_the_queries(monkeypatch):
  """Query block i attends to keys [0, (i + 1) * block): a fallback to one L x L block gives
  the same numbers (so the equality tests pass) but skips none of the masked work."""
  calls = []
  spy(monkeypatch, attention_lib, "_attend", lambda q, k, v, *_: calls.append((q.shape[1], k.shape[1])))
  q = k = v = jnp.ones((1, 8, 2, 4))
  mask = attention_lib.attention_mask(jnp.ones((1, 8), jnp.int32), causal=True)
  for block, want in [(2, [(2, 2), (2, 4), (2, 6), (2, 8)]), (1, [(1, s) for s in range(1, 9)]),
                      (4, [(4, 4), (4, 8)]), (3, [(8, 8)]), (8, [(8, 8)]), (0, [(8, 8)])]:
    calls.clear()
    attention_lib.blocked_attention(q, k, v, mask, block)
    assert calls == want, block
