"""Training against references: sharded == single device, accumulation == big batch, exact
resume after SIGTERM/SIGKILL in real subprocesses, bits per byte by hand, sampling."""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from llm_input import cli
from llm_input.data import pipeline
from llm_input.errors import CheckpointError, ConfigError, DataError
from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.runs import RunFolder
from llm_input.train import loop, optim as optim_lib, sample as sample_lib
from llm_input.train import sharding, step as step_lib

from helpers import ROOT, small_config

MODEL = ModelConfig(vocab_size=64, d_model=32, num_layers=2, num_heads=4, max_len=16)


def random_batch(batch=8, length=16, vocab=64, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, vocab, size=(batch, length + 1)).astype(np.int32)
  mask = np.ones((batch, length), np.int32)
  mask[0, -3:] = 0  # some masked targets
  segments = np.ones((batch, length), np.int32)
  segments[1, 9:] = 2  # a packed second document
  positions = np.tile(np.arange(length, dtype=np.int32), (batch, 1))
  positions[1, 9:] = np.arange(length - 9)
  return {"inputs": ids[:, :-1], "targets": ids[:, 1:], "segment_ids": segments,
          "positions": positions, "loss_mask": mask,
          "target_bytes": rng.integers(1, 4, size=(batch, length)).astype(np.int32) * mask}


def run_steps(sizes, devices, steps=2, accum=1, model=MODEL, batch=None):
  mesh = sharding.make_mesh(sizes, devices)
  # eps=1e-3: Adam's first steps are nearly sign descent, which would turn float noise in
  # gradients that are mathematically zero (the K bias: softmax ignores a shift) into full-size
  # updates; a large eps keeps updates proportional to gradients so parameters compare tightly.
  optim = optim_lib.OptimConfig(learning_rate=1e-2, warmup_steps=1, total_steps=10, eps=1e-3,
                               grad_accum_steps=accum)
  trainer = step_lib.Trainer(model, optim, mesh)
  state = trainer.init_state()
  batch = pipeline.global_batch(batch or random_batch(), trainer.batch_sharding)
  losses = []
  for _ in range(steps):
    state, metrics = trainer.train_step(state, batch)
    losses.append(float(metrics["loss"]))
    losses.append(float(metrics["grad_norm"]))
  return losses, jax.device_get(state["params"]), state


def max_diff(a, b):
  return max(float(np.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("sizes", [dict(data=8, fsdp=1, tensor=1), dict(data=1, fsdp=8, tensor=1),
                                   dict(data=2, fsdp=2, tensor=2), dict(data=1, fsdp=2, tensor=4)],
                         ids=["data8", "fsdp8", "mixed", "tensor4"])
def test_sharded_step_equals_single_device(sizes):
  assert len(jax.devices()) == 8
  single_losses, single, _ = run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  losses, params, state = run_steps(sizes, None)
  np.testing.assert_allclose(losses, single_losses, rtol=1e-5)
  assert max_diff(params, single) < 1e-5
  if sizes["tensor"] > 1:  # the parameters really are split
    spec = state["params"]["blocks"]["mlp"]["up_kernel"].sharding.spec
    assert "tensor" in str(spec)


_STEPS_SCRIPT = """
import json, sys
import jax, numpy as np
sys.path.insert(0, {tests!r})
import test_train as t
losses, params, _ = t.run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1], steps=3)
print(json.dumps({{"losses": losses, "params": [np.asarray(x, np.float64).ravel()[:512].tolist()
                                                 for x in jax.tree.leaves(params)]}}))
"""


def test_the_suites_fast_compile_trains_like_the_default_optimisation_level():
  """The suite compiles with LLVM at -O0 (tests/conftest.py: a quarter off the suite's time);
  users run XLA's default level. Both must compute the same training steps: losses, gradient
  norms and parameters after three steps agree to float32 tolerance (not bit for bit)."""
  flags = os.environ.get("XLA_FLAGS", "")
  assert "--xla_backend_optimization_level=0" in flags  # what the rest of the suite runs
  results = []
  for level_flags in (flags.replace("--xla_backend_optimization_level=0", ""), flags):
    out = subprocess.run([sys.executable, "-c", _STEPS_SCRIPT.format(tests=str(ROOT / "tests"))],
                         capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "XLA_FLAGS": level_flags})
    assert out.returncode == 0, out.stderr[-2000:]
    results.append(json.loads(out.stdout.strip().splitlines()[-1]))
  default, fast = results
  np.testing.assert_allclose(fast["losses"], default["losses"], rtol=1e-5)
  for a, b in zip(fast["params"], default["params"]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_gradient_accumulation_equals_one_big_batch():
  big_losses, big, _ = run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1], steps=2)
  acc_losses, acc, _ = run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1], steps=2, accum=4)
  np.testing.assert_allclose(acc_losses, big_losses, rtol=1e-5)
  assert max_diff(acc, big) < 1e-5


def test_bits_per_byte_by_hand():
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  trainer = step_lib.Trainer(MODEL, optim_lib.OptimConfig(), mesh)
  state = trainer.init_state()
  batch = random_batch()
  sums = jax.device_get(trainer.eval_step(state["params"], batch))
  logits = np.asarray(trainer.model(state["params"])(batch["inputs"], batch["positions"],
                                                      batch["segment_ids"]), np.float64)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(log_probs, batch["targets"][..., None], -1)[..., 0]
  mask = batch["loss_mask"] == 1
  want_bits_per_byte = nll[mask].sum() / (math.log(2) * batch["target_bytes"][mask].sum())
  got = step_lib.summarize_eval(sums)
  assert got["bits_per_byte"] == pytest.approx(want_bits_per_byte, rel=1e-5)
  assert got["loss"] == pytest.approx(nll[mask].mean(), rel=1e-5)
  assert got["perplexity"] == pytest.approx(math.exp(nll[mask].mean()), rel=1e-5)
  # a 3-token, 7-byte example: 3 x ln(4) nats = 6 bits over 7 bytes
  assert step_lib.summarize_eval({"loss_sum": 3 * math.log(4), "tokens": 3, "bytes": 7, "correct": 1}) == {
      "loss": pytest.approx(math.log(4)), "perplexity": pytest.approx(4.0),
      "bits_per_byte": pytest.approx(6 / 7), "accuracy": pytest.approx(1 / 3), "tokens": 3, "bytes": 7}
  # one token of ln 2 nats over one byte: 1 bit per byte, perplexity 2, and it was right
  assert step_lib.summarize_eval({"loss_sum": math.log(2), "tokens": 1, "bytes": 1, "correct": 1}) == {
      "loss": pytest.approx(math.log(2)), "perplexity": pytest.approx(2.0), "bits_per_byte": pytest.approx(1.0),
      "accuracy": 1.0, "tokens": 1, "bytes": 1}
  # nothing evaluated divides by 1, not 0; a diverged loss has an infinite perplexity
  assert step_lib.summarize_eval({"loss_sum": 0.0, "tokens": 0, "bytes": 0, "correct": 0})["loss"] == 0.0
  assert step_lib.summarize_eval({"loss_sum": 2000.0, "tokens": 2, "bytes": 2, "correct": 0})["perplexity"] == math.inf
  assert step_lib.summarize_eval({"loss_sum": 120.0, "tokens": 2, "bytes": 2, "correct": 0})["perplexity"] == \
      pytest.approx(math.exp(60.0))


def test_train_step_metrics_and_first_update_by_hand():
  """Every metric of one train step, and Adam's first update, against plain-JAX references:
  the loss from logsumexp and a gather, its gradient by autodiff, norms in numpy."""
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  # eps=1e-3 keeps Adam's first update g / (|g| + eps) away from sign(g) of float noise
  cfg = optim_lib.OptimConfig(learning_rate=1e-2, warmup_steps=4, total_steps=10, eps=1e-3,
                              weight_decay=0.5, grad_clip_norm=0.0, z_loss=0.03)
  trainer = step_lib.Trainer(MODEL, cfg, mesh, seed=5)
  state = trainer.init_state()
  params = jax.device_get(state["params"])
  rng0 = np.asarray(state["rng"])
  # the run's seed picks the initial weights (seed 5's model, not seed 0's) and the rng stream
  seeded = lambda seed: nnx.to_pure_dict(nnx.state(transformer.create(MODEL, seed=seed), nnx.Param))  # noqa: E731
  assert max_diff(params, seeded(5)) < 1e-6  # jit vs eager init: 7e-9
  assert max_diff(params, seeded(0)) > 1e-2
  np.testing.assert_array_equal(rng0, jax.random.key_data(jax.random.key(6)))
  batch = random_batch(seed=2)
  mask = batch["loss_mask"].astype(np.float32)

  def reference_loss(p, mask=mask):
    logits = trainer.model(p)(batch["inputs"], batch["positions"], batch["segment_ids"])
    log_z = jax.nn.logsumexp(logits, -1)
    target = jnp.take_along_axis(logits, batch["targets"][..., None], -1)[..., 0]
    return (((log_z - target) * mask).sum() + 0.03 * (jnp.square(log_z) * mask).sum()) / mask.sum()

  grads = jax.device_get(jax.grad(reference_loss)(params))
  logits = np.asarray(trainer.model(params)(batch["inputs"], batch["positions"], batch["segment_ids"]),
                      np.float64)
  log_z = np.log(np.exp(logits).sum(-1))
  nll = log_z - np.take_along_axis(logits, batch["targets"][..., None], -1)[..., 0]
  norm = lambda tree: math.sqrt(sum(float(np.square(np.asarray(x, np.float64)).sum())
                                    for x in jax.tree.leaves(tree)))

  assert state["step"].dtype == jnp.int32  # a float32 counter stops counting at 2^24
  state_copy = jax.device_get(state)
  new_state, metrics = trainer.train_step(state, pipeline.global_batch(batch, trainer.batch_sharding))
  m = {k: float(v) for k, v in jax.device_get(metrics).items()}
  assert m["tokens"] == mask.sum() == 125
  assert m["loss"] == pytest.approx((nll * mask).sum() / mask.sum(), rel=1e-5)
  assert m["z_loss"] == pytest.approx((log_z ** 2 * mask).sum() / mask.sum(), rel=1e-5)
  assert m["accuracy"] == pytest.approx(((logits.argmax(-1) == batch["targets"]) * mask).sum() / mask.sum())
  assert m["bits_per_byte"] == pytest.approx(
      (nll * mask).sum() / (math.log(2) * batch["target_bytes"].sum()), rel=1e-5)
  assert m["grad_norm"] == pytest.approx(norm(grads), rel=1e-4)
  assert m["param_norm"] == pytest.approx(norm(params), rel=1e-6)
  assert m["learning_rate"] == pytest.approx(1e-2 / 4)  # step 0 of a 4-step linear warmup
  # AdamW's first step: m_hat = g, v_hat = g^2, so update = -lr (g / (|g| + eps) + wd p) on
  # the kernels (decayed) and -lr g / (|g| + eps) elsewhere
  new_params = jax.device_get(new_state["params"])

  def expected(path, p, g):
    name = str(path[-1].key)
    decay = 0.5 * p if name.endswith("_kernel") and "embedding" not in str(path) else 0.0
    return p - 1e-2 / 4 * (g / (np.abs(g) + 1e-3) + decay)

  want = jax.tree_util.tree_map_with_path(expected, params, grads)
  assert max_diff(new_params, want) < 1e-6
  assert m["update_norm"] == pytest.approx(norm(jax.tree.map(np.subtract, new_params, params)), rel=1e-4)
  assert int(new_state["step"]) == 1
  # a batch with one target token: its loss is that token's, and the gradient is not halved
  one = dict(batch, loss_mask=np.zeros_like(batch["loss_mask"]))
  one["loss_mask"][3, 5] = 1
  one["target_bytes"] = np.ones_like(batch["target_bytes"])  # a one-byte token
  _, one_metrics = trainer.train_step(jax.device_put(state_copy, trainer.state_shardings),
                                      pipeline.global_batch(one, trainer.batch_sharding))
  assert float(one_metrics["tokens"]) == 1
  assert float(one_metrics["loss"]) == pytest.approx(nll[3, 5], rel=1e-5)
  assert float(one_metrics["bits_per_byte"]) == pytest.approx(nll[3, 5] / math.log(2), rel=1e-5)
  one_mask = one["loss_mask"].astype(np.float32)
  one_grads = jax.grad(lambda p: reference_loss(p, one_mask))(params)
  assert float(one_metrics["grad_norm"]) == pytest.approx(norm(one_grads), rel=1e-4)
  # the rng of step s + 1 is the step-s rng folded with s (a fresh stream every step)
  rng1 = np.asarray(new_state["rng"])
  np.testing.assert_array_equal(rng1, jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(rng0), 0)))
  third, _ = trainer.train_step(new_state, pipeline.global_batch(batch, trainer.batch_sharding))
  np.testing.assert_array_equal(np.asarray(third["rng"]),
                                jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(rng1), 1)))
  # the step donates its input state: the old weights and Adam moments are freed, not kept
  # (a state nothing else holds; numpy views of a CPU buffer, like those above, block donation)
  fresh = trainer.init_state()
  trainer.train_step(fresh, pipeline.global_batch(batch, trainer.batch_sharding))
  assert all(array.is_deleted() for array in jax.tree.leaves(fresh))


@pytest.mark.parametrize("vocab_split", [True, False], ids=["masked-sum", "gather"])
def test_fused_cross_entropy_and_its_backward_match_autodiff(vocab_split):
  rng = np.random.default_rng(3)
  logits = jnp.asarray(rng.normal(scale=3.0, size=(2, 5, 11)), jnp.float32)
  targets = jnp.asarray(rng.integers(0, 11, size=(2, 5)), jnp.int32)
  logits = logits.at[0, 0, 4].set(50.0).at[0, 0, 7].set(50.0)  # a tie at the max
  targets = targets.at[0, 0].set(7)
  log_z, target, top = step_lib.log_z_and_target_logit(logits, targets, vocab_split)
  want_log_z = jax.nn.logsumexp(logits, axis=-1)
  want_target = jnp.take_along_axis(logits, targets[..., None], -1)[..., 0]
  np.testing.assert_allclose(np.asarray(log_z), np.asarray(want_log_z), rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(target), np.asarray(want_target))
  # correct = target has the max logit: argmax agrees except on the tie, where argmax
  # picks the first index (4) and we count the target (7) as correct
  correct = np.asarray(target >= top)
  argmax_correct = np.asarray(jnp.argmax(logits, -1) == targets)
  assert correct[0, 0] and not argmax_correct[0, 0]
  np.testing.assert_array_equal(correct.ravel()[1:], argmax_correct.ravel()[1:])

  weights = jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)

  def objective(fn):
    def f(x):
      lz, t = fn(x)
      return ((lz - t) * weights).sum() + 0.3 * jnp.square(lz).sum()
    return f

  ours = objective(lambda x: step_lib.log_z_and_target_logit(x, targets, vocab_split)[:2])
  plain = objective(lambda x: (jax.nn.logsumexp(x, -1),
                               jnp.take_along_axis(x, targets[..., None], -1)[..., 0]))
  assert float(ours(logits)) == pytest.approx(float(plain(logits)), rel=1e-6)
  np.testing.assert_allclose(np.asarray(jax.grad(ours)(logits)), np.asarray(jax.grad(plain)(logits)),
                             rtol=1e-5, atol=1e-6)


def test_loss_gathers_the_target_logit_only_when_the_vocabulary_is_whole_on_each_device():
  whole = step_lib.Trainer(MODEL, optim_lib.OptimConfig(),
                           sharding.make_mesh(dict(data=2, fsdp=1, tensor=1), jax.devices()[:2]))
  split = step_lib.Trainer(MODEL, optim_lib.OptimConfig(),
                           sharding.make_mesh(dict(data=1, fsdp=1, tensor=2), jax.devices()[:2]))
  assert not whole.vocab_split and split.vocab_split
  # the gather path reads B x L logits, never a (B, L, V) select as the masked sum does
  batch = {k: jnp.zeros((2, 8), jnp.int32) for k in ("inputs", "targets", "segment_ids",
                                                      "positions", "loss_mask", "target_bytes")}

  def full_selects(trainer):
    hlo = jax.jit(trainer.loss_sums).lower(trainer.abstract_state["params"], batch).as_text()
    return [line for line in hlo.splitlines() if "select" in line and "2x8x64xf32" in line]

  assert not full_selects(whole) and full_selects(split)


def test_no_weight_decay_on_norms_biases_embeddings():
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  trainer = step_lib.Trainer(MODEL, optim_lib.OptimConfig(), mesh)
  mask = optim_lib.decay_mask(trainer.abstract_state["params"])
  assert mask["blocks"]["attention"]["q_kernel"] and mask["blocks"]["mlp"]["down_kernel"]
  assert not mask["embedding"]["table"] and not mask["blocks"]["attention"]["q_bias"]
  assert not mask["final_norm"]["scale"] and not mask["positions"]["table"]


def test_loss_falls_on_a_small_corpus(corpus, tmp_path):
  cfg = small_config(*corpus, "train.steps=60", "train.eval_every=60")
  result = loop.train(cfg, tmp_path / "run", say=lambda *a: None)
  records = [r for r in RunFolder(tmp_path / "run").read_metrics() if r["split"] == "train"]
  first, last = np.mean([r["loss"] for r in records[:5]]), np.mean([r["loss"] for r in records[-5:]])
  assert last < first - 1.0, (first, last)
  assert result["validation"]["bits_per_byte"] < 3.0
  folder = tmp_path / "run"
  for name in ("config.json", "metrics.jsonl", "samples.txt", "tokenizer/tokenizer.json"):
    assert (folder / name).exists(), name
  assert RunFolder(folder).checkpoint_steps() == [0, 50, 55, 60]  # step 0 is always kept


# -- kill and resume in real subprocesses ------------------------------------------------------

def _train_cmd(corpus, workdir, steps):
  texts, cache = corpus
  return [sys.executable, "-m", "llm_input.cli", "train", "--config", str(ROOT / "configs/tiny.py"),
          "--workdir", str(workdir), f"--config.data.corpus=text:{texts}",
          f"--config.data.data_dir={cache}", "--config.data.seq_len=32", "--config.data.batch_size=8",
          "--config.tokenizer.kind=char", "--config.tokenizer.vocab_size=64",
          "--config.model.d_model=32", "--config.model.num_layers=2", "--config.model.num_heads=4",
          "--config.model.max_len=32", f"--config.train.steps={steps}", "--config.train.eval_every=1000",
          "--config.train.log_every=1", "--config.checkpoint.every_steps=4",
          "--config.checkpoint.every_minutes=0", "--config.logging.progress_bar=False",
          "--config.logging.tensorboard=False", "--config.sample.max_new_tokens=4",
          "--config.schedule.warmup_steps=3"]


def _env():
  env = dict(os.environ)
  # one device, and LLVM at -O0 like the rest of the suite (conftest.py)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0"
  return env


def _losses(workdir):
  out = {}
  for r in RunFolder(workdir).read_metrics():
    if r["split"] == "train":
      out[r["step"]] = r["loss"]
  return out


def _wait_for_step(workdir, step, process, timeout=180):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if process.poll() is not None:
      raise AssertionError(f"training exited early: {process.stdout.read()}")
    if max(_losses(workdir), default=0) >= step:
      return
    time.sleep(0.05)
  raise AssertionError("training did not reach the step in time")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("full") / "run"
  done = subprocess.run(_train_cmd(corpus, workdir, 24), env=_env(), capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return _losses(workdir)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_and_resumed_run_matches_uninterrupted(corpus, tmp_path, uninterrupted, sig):
  workdir = tmp_path / "run"
  process = subprocess.Popen(_train_cmd(corpus, workdir, 24), env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
  _wait_for_step(workdir, 10, process)
  process.send_signal(sig)
  output = process.communicate(timeout=120)[0]
  if sig == signal.SIGTERM:
    assert process.returncode == 0, output[-2000:]
    assert "SIGTERM: saved step" in output
    saved = int(output.split("SIGTERM: saved step ")[1].split(";")[0])
    assert saved >= 10 and saved in RunFolder(workdir).checkpoint_steps()  # the current step, not the last multiple of 4
  else:
    assert process.returncode == -signal.SIGKILL
  resumed = subprocess.run(_train_cmd(corpus, workdir, 24), env=_env(), capture_output=True,
                           text=True, timeout=300)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from step" in resumed.stdout
  got = _losses(workdir)
  assert sorted(got) == list(range(1, 25))
  assert got == uninterrupted  # bitwise: float32 on CPU


# -- checkpoints: damaged and foreign ----------------------------------------------------------

@pytest.fixture(scope="module")
def trained_run(corpus, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("trained") / "run"
  loop.train(small_config(*corpus, "train.steps=10"), workdir, say=lambda *a: None)
  return workdir


def test_corrupted_latest_checkpoint_falls_back_to_previous(corpus, trained_run, tmp_path, capsys):
  import shutil
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  for f in (workdir / "checkpoints" / "10" / "state").rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(b"\x00garbage" * 4)
  result = loop.train(small_config(*corpus, "train.steps=12"), workdir, say=print,
                      allow_config_change=True)
  out = capsys.readouterr().out
  assert "checkpoint at step 10" in out and "corrupted" in out and "previous good checkpoint" in out
  assert "resumed from step 5" in out
  assert result["step"] == 12


def test_checkpoint_of_a_different_model_shape_is_refused(corpus, trained_run, tmp_path):
  import shutil
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  (workdir / "config.json").unlink()  # pretend the config was lost, so only shapes can tell
  with pytest.raises(CheckpointError, match="different shape.*d_model|different shape"):
    loop.train(small_config(*corpus, "train.steps=12", "model.d_model=64"), workdir)


@pytest.mark.parametrize("override, section", [
    ("model.num_layers=3", "model"), ("model.positions=rope", "model"),
    ("data.seq_len=16", "data"), ("data.corpus=text:/elsewhere/*.txt", "data"), ("data.add_eos=False", "data"),
    ("tokenizer.vocab_size=48", "tokenizer"), ("tokenizer.kind=byte", "tokenizer"), ("seed=1", "seed"),
])
def test_resuming_with_a_different_model_data_or_tokenizer_is_refused(corpus, trained_run, override, section):
  before = sorted(p.name for p in trained_run.rglob("*"))
  with pytest.raises(ConfigError, match=f"holds a run with a different {section} config"):
    loop.train(small_config(*corpus, override), trained_run)
  assert sorted(p.name for p in trained_run.rglob("*")) == before  # nothing written


def test_a_speed_field_may_change_when_a_run_resumes(corpus, trained_run, tmp_path):
  """model.head_loss_chunk and model.attention_block change how the step is computed, not what:
  a resume may change them (and the change is recorded), unlike the rest of the model section."""
  import shutil
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  result = loop.train(small_config(*corpus, "train.steps=12", "model.head_loss_chunk=0",
                                   "model.attention_block=16"), workdir,
                      say=lambda *a: None, allow_config_change=True)  # (more steps: a guarded change)
  assert result["step"] == 12
  changes = RunFolder(workdir).read_config_changes()
  assert changes[-1]["changed"]["model.head_loss_chunk"] == [32, 0]
  assert changes[-1]["changed"]["model.attention_block"] == [64, 16]
  with pytest.raises(ConfigError, match="different model config"):  # the rest stays frozen
    loop.train(small_config(*corpus, "train.steps=12", "model.head_loss_chunk=0", "model.norm_eps=1e-6"),
               workdir, allow_config_change=True)


def test_a_run_saved_before_a_field_was_added_still_resumes(corpus, trained_run, tmp_path):
  import shutil
  workdir = tmp_path / "run"
  shutil.copytree(trained_run, workdir)
  saved = json.loads((workdir / "config.json").read_text())
  del saved["tokenizer"]["path"]  # config.json from before tokenizer.path existed
  (workdir / "config.json").write_text(json.dumps(saved))
  result = loop.train(small_config(*corpus, "train.steps=10"), workdir, say=lambda *a: None)
  assert result["step"] == 10
  with pytest.raises(ConfigError, match="different tokenizer config"):
    loop.train(small_config(*corpus, "train.steps=10", f"tokenizer.path={trained_run / 'tokenizer'}"), workdir)


def test_a_tokenizer_put_in_a_fresh_workdir_is_used_or_refused_never_deleted(corpus, tmp_path, capsys):
  # `tokenizer train --out W/tokenizer` then `train --workdir W`: a start that fails after its
  # pending config is written must not take the user's tokenizer for its own leftovers.
  from llm_input import tokenizers
  texts, _ = corpus
  workdir = tmp_path / "run"
  assert cli.main(["tokenizer", "train", "--kind", "byte", "--vocab-size", "259", "--input", str(texts),
                   "--out", str(workdir / "tokenizer")]) == 0
  before = (workdir / "tokenizer" / "tokenizer.json").read_bytes()
  RunFolder(workdir).write_pending_config(small_config(*corpus))  # as a failed first start leaves
  with pytest.raises(ConfigError, match="holds a byte tokenizer.*tokenizer.path="):
    loop.train(small_config(*corpus, "train.steps=2"), workdir, say=lambda *a: None)
  assert (workdir / "tokenizer" / "tokenizer.json").read_bytes() == before
  said = []
  loop.train(small_config(*corpus, "train.steps=2", "tokenizer.kind=byte", "tokenizer.vocab_size=259"),
             workdir, say=said.append)
  assert not any("trained" in line and "tokenizer" in line for line in said), said
  assert tokenizers.load(workdir / "tokenizer").kind == "byte"
  assert (workdir / "tokenizer" / "tokenizer.json").read_bytes() == before


# -- bad configs fail before compilation -------------------------------------------------------

@pytest.mark.parametrize("override, error, message", [
    ("data.batch_size=6", DataError, "not divisible by the 8 data-parallel devices"),
    ("mesh.data=16", ConfigError, "needs 16 devices but 8 are available"),
    ("optimizer.grad_accum_steps=3", ConfigError, "grad_accum_steps=3"),
    ("schedule.kind=step", ConfigError, "schedule.kind"),
    ("model.positions=alibi", ConfigError, "model.positions"),
    ("tokenizer.kind=phoneme", ConfigError, "tokenizer.kind"),
    ("model.max_len=16", ConfigError, "model.max_len: learned positions have max_len=16 rows but data.seq_len=32"),
])
def test_bad_configs_fail_before_any_work(corpus, tmp_path, override, error, message):
  cfg = small_config(*corpus, override)
  with pytest.raises(error, match=message):
    loop.train(cfg, tmp_path / "run")
  assert not (tmp_path / "run").exists()


def test_unknown_config_key_fails(corpus):
  with pytest.raises(ConfigError, match="unknown config field 'train.stpes'"):
    small_config(*corpus, "train.stpes=3")


# -- sampling --------------------------------------------------------------------------------

@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_greedy_cached_sampling_equals_full_recomputation(positions):
  cfg = ModelConfig(vocab_size=64, d_model=32, num_layers=2, num_heads=4, max_len=32,
                    positions=positions, init_std=0.3)
  params = nnx.to_pure_dict(nnx.state(transformer.create(cfg), nnx.Param))
  prompt = [1, 5, 9, 12]
  cached = sample_lib.Sampler(cfg, params, context=32).generate(prompt, 12, temperature=0.0)
  assert cached == sample_lib.generate_without_cache(cfg, params, prompt, 12)
  assert len(set(cached)) > 1  # not a degenerate constant
  top1 = sample_lib.Sampler(cfg, params, context=32).generate(prompt, 12, temperature=1.0, top_k=1, seed=3)
  assert top1 == cached


def test_top_k_and_top_p_filtering():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  kept = lambda f: np.isfinite(np.asarray(f))[0].tolist()  # noqa: E731
  assert kept(sample_lib.filter_logits(logits, 1.0, 2, 1.0)) == [True, True, False, False]
  assert kept(sample_lib.filter_logits(logits, 1.0, 0, 0.7)) == [True, True, False, False]
  assert kept(sample_lib.filter_logits(logits, 1.0, 0, 0.81)) == [True, True, True, False]
  assert kept(sample_lib.filter_logits(logits, 1.0, 0, 0.1)) == [True, False, False, False]


def test_sample_command_reads_the_run(trained_run, capsys):
  assert cli.main(["sample", "--run", str(trained_run), "--prompt", "the bank", "--max-new-tokens",
                   "10", "--temperature", "0"]) == 0
  out = capsys.readouterr().out
  # char tokenizer: one character per new token (fewer only if </s> came first)
  assert out.startswith("the bank") and len("the bank") < len(out.rstrip("\n")) <= len("the bank") + 10
  assert cli.main(["sample", "--run", str(trained_run / "nope")]) == 2


@pytest.mark.parametrize("kv_heads, sharded", [(4, True), (2, False)])
def test_kv_heads_follow_the_tensor_axis_or_say_why_not(kv_heads, sharded):
  from llm_input.model import transformer

  cfg = ModelConfig(vocab_size=64, d_model=32, num_layers=2, num_heads=4, num_kv_heads=kv_heads, max_len=16)
  mesh = sharding.make_mesh(dict(data=2, fsdp=1, tensor=4))
  abstract = transformer.abstract(cfg)
  specs = sharding.param_shardings(abstract, mesh)["blocks"]["attention"]
  notes = sharding.replication_notes(abstract, mesh)
  for name in ("k_kernel", "v_kernel"):
    assert ("tensor" in str(specs[name].spec)) == sharded
    assert any(n.startswith(f"blocks/attention/{name} replicated: kv_heads=2 is not divisible by "
                            "tensor=4") for n in notes) != sharded
  assert "tensor" in str(specs["q_kernel"].spec)  # query heads (4) split either way
  # the rule is the config's: kv_heads -> None keeps K/V replicated without a note
  rules = {**sharding.DEFAULT_RULES, "kv_heads": None}
  assert "tensor" not in str(sharding.param_shardings(abstract, mesh, rules)["blocks"]["attention"]["k_kernel"].spec)



@pytest.mark.parametrize("tie, dtype, z_loss", [(True, "float32", 0.0), (False, "float32", 1e-2),
                                                (True, "bfloat16", 1e-2)])
def test_chunked_head_and_loss_equal_the_whole_logits_path(tie, dtype, z_loss):
  """`model.head_loss_chunk`: the objective, its parts and every gradient equal the (B, L, V)
  path's (itself checked against autodiff), with masked targets, a packed second document, the
  z-loss, untied heads and bfloat16; and a train step under 8 devices (data x fsdp) equals it."""
  model = dataclasses.replace(MODEL, tie_embeddings=tie, dtype=dtype, vocab_size=64)
  mesh = sharding.make_mesh(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1])
  optim = optim_lib.OptimConfig(learning_rate=1e-2, warmup_steps=1, total_steps=10, z_loss=z_loss)
  whole = step_lib.Trainer(model, optim, mesh)
  chunked = step_lib.Trainer(dataclasses.replace(model, head_loss_chunk=4), optim, mesh)
  assert chunked.fused_head_loss and not whole.fused_head_loss
  params = whole.init_state()["params"]
  batch = pipeline.global_batch(random_batch(), whole.batch_sharding)
  (obj_a, parts_a), grads_a = jax.jit(jax.value_and_grad(whole.loss_sums, has_aux=True))(params, batch)
  (obj_b, parts_b), grads_b = jax.jit(jax.value_and_grad(chunked.loss_sums, has_aux=True))(params, batch)
  tol = 2e-2 if dtype == "bfloat16" else 1e-5
  np.testing.assert_allclose(float(obj_b), float(obj_a), rtol=tol)
  for key in ("loss_sum", "z_sum", "correct", "tokens", "bytes"):
    np.testing.assert_allclose(float(parts_b[key]), float(parts_a[key]), rtol=tol, err_msg=key)
  scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(grads_a))
  assert max_diff(grads_a, grads_b) <= tol * scale
  # the eval step (no differentiation) gives the same sums
  eval_a, eval_b = whole.eval_step(params, batch), chunked.eval_step(params, batch)
  for key in eval_a:
    np.testing.assert_allclose(float(eval_b[key]), float(eval_a[key]), rtol=tol, err_msg=key)
  eight = step_lib.Trainer(dataclasses.replace(model, head_loss_chunk=4), optim, sharding.make_mesh(
      dict(data=2, fsdp=4, tensor=1), jax.devices()))
  assert not eight.fused_head_loss  # on a mesh its collectives would run once per chunk
  if dtype == "float32" and tie:  # a step with the chunk set: 8 devices (the whole path) equal one (chunked)
    one, params_one, _ = run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1],
                                   model=dataclasses.replace(model, head_loss_chunk=4))
    eight, params_eight, _ = run_steps(dict(data=2, fsdp=4, tensor=1), jax.devices(),
                                       model=dataclasses.replace(model, head_loss_chunk=4))
    ref, params_ref, _ = run_steps(dict(data=1, fsdp=1, tensor=1), jax.devices()[:1], model=model)
    np.testing.assert_allclose(eight, one, rtol=1e-5)
    np.testing.assert_allclose(one, ref, rtol=1e-5)
    assert max_diff(params_one, params_eight) < 1e-5 and max_diff(params_one, params_ref) < 1e-5
