"""`llm-input bench` reports every figure it promises (speed is not asserted: machines are shared)."""

import numpy as np
import pytest

from llm_input.train import bench, metrics as metrics_lib, step as step_lib

from helpers import small_config


@pytest.mark.slow  # 39 s of peak matmuls, compiles and loop steps
def test_bench_reports_ratios_from_one_run(corpus):
  cfg = small_config(*corpus)
  # peak_size=512: the default 4096^3 peak matmuls take most of a minute on 2 cores
  result = bench.run(cfg, steps=2, compile_depths="1,3", loop_steps=6, parts=True, peak_size=512)
  step = result["step"]
  # Expected values from the raw measurements and a hand count, not the code's own fields:
  # 2 layers x (4 x 32^2 attention + 2 x 32 x 128 MLP) + a 32 x 64 head = 26,624 matmul
  # parameters; 6 x that x 256 tokens, plus causal attention 3 x 2 x 8 x 4 x 32^2 x 32 / 2.
  flops_by_hand = 6 * 26_624 * 256 + 3 * 2 * 8 * (2 * 2 * 32 * 32 * 32) / 2
  assert step["flops_per_step"] == flops_by_hand == 44_040_192
  assert len(step["step_times_s"]) == 2
  median_s = float(np.median(step["step_times_s"]))
  assert step["tokens_per_s"] == pytest.approx(8 * 32 / median_s)
  assert step["flops_per_s"] == pytest.approx(flops_by_hand / median_s)
  # MFU against the mean of the peaks measured before and after the steps; strict: the better
  assert step["page_faults_per_step"] >= 0 and step["system_s_per_step"] >= 0
  before, after = result["peak_flops_f32"], result["peak_flops_f32_after"]
  assert result["mfu"] == pytest.approx(flops_by_hand / median_s / ((before + after) / 2))
  assert result["mfu_vs_best_peak"] == pytest.approx(flops_by_hand / median_s / max(before, after))
  assert set(result["compile_s_by_depth"]) == {1, 3}
  assert result["loop"]["loop_steps"] >= 2 and result["loop"]["loop_over_step"] > 0
  assert all(v > 0 for v in result["breakdown"].values())


def test_flops_per_step_by_hand():
  from llm_input.model.config import ModelConfig
  cfg = ModelConfig(vocab_size=100, d_model=16, num_layers=2, num_heads=2, max_len=8)
  matmul_params = 2 * (4 * 16 * 16 + 2 * 16 * 64) + 16 * 100
  attention = 3 * 2 * 4 * (2 * 2 * 8 * 8 * 16) / 2  # 3 x layers x batch x 4 L^2 d, causal half
  assert metrics_lib.flops_per_step(cfg, batch=4, seq_len=8) == 6 * matmul_params * 32 + attention


def test_plain_jax_reference_is_the_same_model_and_is_timed_alternately(corpus):
  import jax
  import jax.numpy as jnp
  import numpy as np

  from llm_input.train import sections as sections_lib

  cfg = small_config(*corpus)
  sections = sections_lib.validate(cfg)
  model_cfg = sections.model
  trainer = step_lib.Trainer(model_cfg, sections.optim, sections.mesh)
  params = trainer.init_state()["params"]
  batch = bench.synthetic_batch(8, 32, model_cfg.vocab_size)
  # compiled, not op by op: the same numbers in a fraction of the time on 8 simulated devices
  ours_sum, parts = jax.jit(trainer.loss_sums)(params, batch)
  plain_loss = jax.jit(bench.plain_jax_loss, static_argnums=(3, 4))
  plain = plain_loss(params, jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"]),
                     model_cfg.num_heads, model_cfg.norm_eps)
  assert float(plain) == pytest.approx(float(ours_sum / parts["tokens"]), rel=1e-5)
  # same gradients too (ours sums over tokens; the plain loss is the mean)
  ours_grads = jax.jit(jax.grad(lambda p: trainer.loss_sums(p, batch)[0] / parts["tokens"]))(params)
  plain_grads = jax.jit(jax.grad(bench.plain_jax_loss), static_argnums=(3, 4))(
      params, jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"]), 4, model_cfg.norm_eps)
  for a, b in zip(jax.tree.leaves(ours_grads), jax.tree.leaves(plain_grads)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-4)

  result = bench.plain_jax_comparison(cfg, steps=2)
  assert len(result["step_times_s"]) == len(result["plain_jax_step_times_s"]) == 2
  assert result["step_over_plain_jax"] == pytest.approx(result["step_s"] / result["plain_jax_step_s"])


def test_plain_jax_comparison_refuses_other_architectures_before_compiling(corpus):
  from llm_input.errors import ConfigError

  cfg = small_config(*corpus, "model.positions=rope")
  with pytest.raises(ConfigError, match="hand-written GPT-2"):
    bench.plain_jax_comparison(cfg, steps=1)


def test_profile_splits_the_traced_step_by_model_part(corpus):
  """`bench --profile`: every op that ran is attributed to the named part of the model or
  step it came from (forward and backward apart); the shares cover the traced op time."""
  cfg = small_config(*corpus)
  # one device: eight simulated ones on two cores spend the step waiting on each other
  profile = bench.profile_split(cfg, steps=2, device_count=1)
  shares = profile["shares"]
  assert sum(shares.values()) == pytest.approx(1.0)
  for part in ("attention_core", "attention_core (backward)", "attention", "mlp",
               "mlp (backward)", "norm", "head_and_loss", "optimizer"):  # the preset's chunked head + loss
    assert shares.get(part, 0) > 0, (part, shares)
  assert "head" not in shares and "loss (backward)" not in shares
  # the whole-logits path's ops keep their own parts (read from its compiled step; no trace)
  _, _, trainer, state, _, batch = bench.setup(small_config(*corpus, "model.head_loss_chunk=0"), 1)
  parts = set(bench._op_parts(trainer.train_step.lower(state, batch).compile().as_text()).values())
  assert {"head", "head (backward)", "loss", "loss (backward)"} <= parts, parts
  assert shares.get("other", 0) + shares.get("other (backward)", 0) < 0.25
  assert sum(profile["seconds"].values()) == pytest.approx(profile["step_s"])
  assert 0 < profile["device_busy_share"] <= 1
  # XLA's count adds elementwise work to the matmuls the analytic count is made of
  assert profile["analytic_flops"] <= profile["xla_flops"] <= 3 * profile["analytic_flops"]
  assert "| attention_core (backward) |" in bench.format_profile(profile)
  # the matmul share of each part: the MLP is matmuls and its activation; the optimizer none
  assert 0 < profile["matmul_share"] < 1
  assert profile["matmul_shares"]["mlp"] > 0 and profile["matmul_shares"]["optimizer"] == 0
  assert set(profile["matmul_shares"]) == set(shares)


def test_matmul_ops_are_the_dots_and_the_fusions_around_them():
  """The profile's matmul share counts an op when it runs a dot, also inside a fusion (XLA:CPU
  puts its dots, with the elementwise work around them, in library fusions), and only then."""
  import jax
  import jax.numpy as jnp

  x, w = jnp.ones((64, 32)), jnp.ones((32, 48))
  text = jax.jit(lambda x, w: (jnp.tanh(x @ w) * 2.0, jnp.exp(x) + 1.0)).lower(x, w).compile().as_text()
  ops = bench._matmul_ops(text)
  instructions = [m.groups() for m in map(bench._INSTRUCTION.match, text.splitlines()) if m]
  # the dot, and the fusion (a library kernel on XLA:CPU) that runs it: both named for the dot
  assert {name for name, opcode, op_name in instructions if op_name.endswith("/dot_general")} <= ops
  assert any(opcode == "fusion" for name, opcode, _ in instructions if name in ops)
  # the elementwise fusions on either side are not matmuls
  assert not {name for name, _, op_name in instructions if op_name.endswith(("/add", "/mul", "/exp", "/tanh"))} & ops
