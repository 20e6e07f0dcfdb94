"""The training loop: run folder, tokenizer, data, sharded state, checkpoints, eval, samples.

`train(cfg, workdir)` resumes from the newest complete checkpoint in `workdir`, so the same
command continues a killed run. SIGTERM (what preemptible TPU VMs receive) saves the current
step and returns cleanly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import time

import jax
import ml_collections
import numpy as np

from llm_input import config as config_lib
from llm_input import tokenizers
from llm_input.data import pipeline
from llm_input.fileio import write_text_atomic
from llm_input.model import transformer
from llm_input.model.config import ConfigError
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import metrics as metrics_lib
from llm_input.train import sample as sample_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib

# Sections of the config that must not change when a run folder is resumed.
FROZEN_SECTIONS = ("model", "tokenizer", "data", "seed")


def pipeline_config(cfg) -> pipeline.PipelineConfig:
  d = cfg.data
  return pipeline.PipelineConfig(corpus=d.corpus, seq_len=d.seq_len, batch_size=d.batch_size,
                                 seed=cfg.seed, add_bos=d.add_bos, add_eos=d.add_eos,
                                 doc_split=d.doc_split, data_dir=d.data_dir or None)


def optim_config(cfg) -> step_lib.OptimConfig:
  o, s = cfg.optimizer, cfg.schedule
  return step_lib.OptimConfig(
      learning_rate=o.learning_rate, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay,
      decay_all=o.decay_all, grad_clip_norm=o.grad_clip_norm, z_loss=o.z_loss,
      grad_accum_steps=o.grad_accum_steps, schedule=s.kind, warmup_steps=s.warmup_steps,
      final_lr_fraction=s.final_lr_fraction, total_steps=cfg.train.steps)


def validate(cfg, device_count: int | None = None) -> tuple:
  """Every check that needs no data or compilation. Returns (mesh, pipeline cfg, optim cfg)."""
  devices = jax.devices()
  mesh = sharding_lib.make_mesh(cfg.mesh.to_dict(), devices[:device_count] if device_count else None)
  data_parallel = sharding_lib.data_parallel_size(mesh)
  pipe = pipeline_config(cfg)
  pipe.validate(data_parallel, jax.process_count())
  optim = optim_config(cfg)
  accum = optim.grad_accum_steps
  if cfg.data.batch_size % accum or (cfg.data.batch_size // accum) % data_parallel:
    raise ConfigError(f"data.batch_size={cfg.data.batch_size} must split into "
                      f"optimizer.grad_accum_steps={accum} micro-batches that each divide over "
                      f"{data_parallel} data-parallel devices")
  if cfg.tokenizer.kind not in tokenizers.KINDS:
    raise ConfigError(f"tokenizer.kind: unknown {cfg.tokenizer.kind!r}; allowed: {', '.join(tokenizers.KINDS)}")
  for name in ("steps", "eval_every", "log_every"):
    if cfg.train[name] < 1:
      raise ConfigError(f"train.{name} must be >= 1, got {cfg.train[name]}")
  if cfg.sample.max_new_tokens < 0 or cfg.sample.temperature < 0 or not 0 < cfg.sample.top_p <= 1:
    raise ConfigError("sample: max_new_tokens and temperature must be >= 0 and top_p in (0, 1]")
  config_lib.model_config(cfg)  # the model section, with the configured tokenizer size
  return mesh, pipe, optim


def _check_run_config(workdir: pathlib.Path, cfg) -> None:
  saved_path = workdir / "config.json"
  if not saved_path.exists():
    return
  saved = json.loads(saved_path.read_text(encoding="utf-8"))
  now = json.loads(cfg.to_json_best_effort())
  changed = [k for k in FROZEN_SECTIONS if saved.get(k) != now.get(k)]
  if changed:
    raise ConfigError(f"{workdir} holds a run with a different {', '.join(changed)} config; resume "
                      "it with the config in its config.json, or use a new --workdir")


def total_steps(cfg, flops_per_step: float) -> int:
  """train.steps, or the steps that spend train.flops_budget (equal-compute comparisons)."""
  if cfg.train.flops_budget > 0:
    return max(1, int(round(cfg.train.flops_budget / flops_per_step)))
  return int(cfg.train.steps)


def prepare_tokenizer(cfg, workdir: pathlib.Path, pipe: pipeline.PipelineConfig, say=print):
  folder = workdir / "tokenizer"
  if (folder / "tokenizer.json").exists():
    return tokenizers.load(folder)
  t = cfg.tokenizer
  start = time.perf_counter()
  texts = list(pipeline.documents(pipe, "train"))
  options = {}
  if t.kind in ("bpe", "unigram"):
    options = dict(byte_fallback=t.byte_fallback, split_digits=t.split_digits,
                   character_coverage=t.character_coverage, max_sentences=t.max_sentences,
                   seed=cfg.seed)
  tokenizer = tokenizers.train(t.kind, t.vocab_size, texts, lowercase=t.lowercase, **options)
  if jax.process_index() == 0:
    tokenizer.save(folder)
  say(f"trained {t.kind} tokenizer ({tokenizer.vocab_size:,} ids) on {pipe.corpus} in "
      f"{time.perf_counter() - start:.1f} s")
  return tokenizer


class _Preemption:
  """Turns SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    try:
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread
      self._previous = None
    return self

  def _handle(self, signum, frame):
    self.requested = True

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _truncate_metrics(workdir: pathlib.Path, step: int) -> None:
  """After a restore, drop metrics of steps the resumed run will redo."""
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return
  kept = [line for line in path.read_text(encoding="utf-8").splitlines()
          if line.strip() and json.loads(line)["step"] <= step]
  write_text_atomic(path, "".join(line + "\n" for line in kept))


def evaluate(trainer, params, pipe, tokenizer, max_batches: int = 0) -> dict:
  sums = {"loss_sum": 0.0, "tokens": 0.0, "bytes": 0.0, "correct": 0.0}
  batches = pipeline.eval_batches(pipe, tokenizer, process_index=jax.process_index(),
                                  process_count=jax.process_count(),
                                  data_parallel=sharding_lib.data_parallel_size(trainer.mesh))
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    parts = trainer.eval_step(params, pipeline.global_batch(batch, trainer.batch_sharding))
    for k, v in jax.device_get(parts).items():
      sums[k] += float(v)
  return step_lib.summarize_eval(sums)


def write_samples(cfg, workdir, model_cfg, params, tokenizer) -> list[dict]:
  s = cfg.sample
  sampler = sample_lib.Sampler(model_cfg, jax.device_get(params))
  out = []
  for i, prompt in enumerate(s.prompts):
    ids = ([tokenizer.bos_id] if cfg.data.add_bos else []) + tokenizer.encode(prompt)
    new = sampler.generate(ids, s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
                           top_p=s.top_p, seed=cfg.seed + i, stop_id=tokenizer.eos_id)
    out.append({"prompt": prompt, "text": tokenizer.decode(new)})
  if jax.process_index() == 0:
    blocks = [f"=== prompt: {o['prompt']!r} (temperature {s.temperature}, top_k {s.top_k}, "
              f"top_p {s.top_p})\n{o['prompt']}{o['text']}\n" for o in out]
    write_text_atomic(workdir / "samples.txt", "\n".join(blocks))
  return out


def train(cfg: ml_collections.ConfigDict, workdir: str | os.PathLike, *, say=print,
          device_count: int | None = None, stop_after: int | None = None) -> dict:
  """Trains (or resumes) the run in `workdir`. Returns the final metrics.

  `stop_after` ends the loop after that many steps of this call (tests and benchmarks);
  checkpoints and metrics are written as in a full run.
  """
  workdir = pathlib.Path(workdir)
  mesh, pipe, optim = validate(cfg, device_count)
  _check_run_config(workdir, cfg)
  workdir.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    write_text_atomic(workdir / "config.json", cfg.to_json_best_effort(indent=2) + "\n")

  tokenizer = prepare_tokenizer(cfg, workdir, pipe, say)
  model_cfg = config_lib.model_config(cfg, tokenizer.vocab_size)
  flops = step_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
  total = total_steps(cfg, flops)
  if total != optim.total_steps:
    optim = dataclasses.replace(optim, total_steps=total)
  trainer = step_lib.Trainer(model_cfg, optim, mesh, seed=cfg.seed)
  data_parallel = sharding_lib.data_parallel_size(mesh)
  iterator = iter(pipeline.train_dataset(pipe, tokenizer, process_index=jax.process_index(),
                                         process_count=jax.process_count(),
                                         data_parallel=data_parallel))
  c = cfg.checkpoint
  checkpointer = checkpoint_lib.Checkpointer(workdir / "checkpoints", every_steps=c.every_steps,
                                             every_minutes=c.every_minutes, keep=c.keep,
                                             async_save=c.async_save)
  meta = {"model": json.loads(cfg.model.to_json_best_effort()), "vocab_size": tokenizer.vocab_size,
          "param_shapes": checkpoint_lib.param_shapes(trainer.abstract_state)}
  restored = checkpointer.restore_latest(trainer.abstract_state, trainer.state_shardings, iterator)
  if restored is None:
    state, start = trainer.init_state(), 0
    if c.save_step0:
      checkpointer.save(0, state, iterator.get_state(), meta, force=True)
  else:
    state, start = restored
    _truncate_metrics(workdir, start)
    say(f"resumed from step {start} in {workdir}")

  writer = metrics_lib.MetricWriter(workdir, cfg.logging.tensorboard, enabled=jax.process_index() == 0)
  tokens_per_step = cfg.data.batch_size * cfg.data.seq_len
  bar = None
  if cfg.logging.progress_bar and jax.process_index() == 0:
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)

  started = time.time()
  pending = None  # (step, metrics) of the previous step, fetched one step behind
  window_start, window_steps = time.perf_counter(), 0
  last_eval = None
  status = "finished"

  def record(step_and_metrics):
    nonlocal window_start, window_steps
    step, values = step_and_metrics
    values = {k: float(v) for k, v in jax.device_get(values).items()}
    window_steps += 1
    if step % cfg.train.log_every == 0 or step == total:
      elapsed = max(time.perf_counter() - window_start, 1e-9)
      values["tokens_per_s"] = window_steps * tokens_per_step / elapsed
      values["flops_per_s"] = window_steps * flops / elapsed
      values["step_time_s"] = elapsed / window_steps
      writer.write(step, "train", values)
      window_start, window_steps = time.perf_counter(), 0
      if bar is not None:
        bar.set_postfix(loss=f"{values['loss']:.3f}", tok_s=f"{values['tokens_per_s']:,.0f}")
    if bar is not None:
      bar.update(1)

  with _Preemption() as preemption:
    step = start
    while step < total:
      batch = pipeline.global_batch(next(iterator), trainer.batch_sharding)
      state, metrics = trainer.train_step(state, batch)
      step += 1
      if pending is not None:
        record(pending)
      pending = (step, metrics)
      if preemption.requested:
        status = "preempted"
        checkpointer.save(step, state, iterator.get_state(), meta, force=True)
        say(f"\nSIGTERM: saved step {step}; rerun the same command to resume")
        break
      checkpointer.save(step, state, iterator.get_state(), meta)
      if step % cfg.train.eval_every == 0 or step == total:
        record(pending)
        pending = None
        last_eval = evaluate(trainer, state["params"], pipe, tokenizer, cfg.train.eval_batches)
        writer.write(step, "validation", last_eval)
        say(f"\nstep {step}: validation loss {last_eval['loss']:.4f}, "
            f"bits/byte {last_eval['bits_per_byte']:.4f}")
      if stop_after is not None and step - start >= stop_after:
        status = "stopped"
        break
    if pending is not None:
      record(pending)
    loop_seconds = time.time() - started if step > start else 0.0
    if status == "finished" and step == total:
      checkpointer.save(step, state, iterator.get_state(), meta, force=step not in checkpointer.steps())
  checkpointer.close()
  if bar is not None:
    bar.close()
  writer.close()
  result = {"status": status, "step": step, "workdir": str(workdir), "validation": last_eval}
  if status == "finished":
    if last_eval is None:  # a finished run reopened: report its last evaluation
      last_eval = next((r for r in reversed(metrics_lib.read(workdir)) if r["split"] == "validation"), None)
      result["validation"] = last_eval
    result["samples"] = write_samples(cfg, workdir, model_cfg, state["params"], tokenizer)
    if jax.process_index() == 0:
      write_summary(workdir, cfg, model_cfg, tokenizer, pipe, last_eval, step, flops, loop_seconds)
  return result


def write_summary(workdir, cfg, model_cfg, tokenizer, pipe, last_eval, steps, flops, seconds) -> None:
  """summary.json: the final figures a sweep table collects."""
  from llm_input.tokenizers import stats  # noqa: PLC0415

  previous = {}
  if (workdir / "summary.json").exists():
    previous = json.loads((workdir / "summary.json").read_text(encoding="utf-8")).get("table", {})
  token_stats = stats.compute(tokenizer, list(pipeline.documents(pipe, "validation")))
  table = {
      "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
      "tokens_per_word": token_stats.tokens_per_word, "bytes_per_token": token_stats.bytes_per_token,
      "unk_rate": token_stats.unk_rate,
      "params": transformer.count_params(model_cfg),
      "steps": steps, "train_flops": flops * steps, "seq_len": cfg.data.seq_len,
      "val_loss": last_eval["loss"] if last_eval else None,
      "val_bits_per_byte": last_eval["bits_per_byte"] if last_eval else None,
      "val_perplexity": last_eval["perplexity"] if last_eval else None,
      "train_time_s": previous.get("train_time_s", 0.0) + seconds,
  }
  summary = {"status": "finished", "table": table}
  write_text_atomic(workdir / "summary.json", json.dumps(summary, indent=2) + "\n")
