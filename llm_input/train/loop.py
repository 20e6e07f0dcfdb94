"""The training loop: tokenizer, data, sharded state, checkpoints, eval, samples.

The run folder's layout and files belong to `llm_input.runs`; config checks to
`llm_input.config.validate`; this module only drives the loop.

`train(cfg, workdir)` resumes from the newest complete checkpoint in `workdir`, so the same
command continues a killed run. SIGTERM (what preemptible TPU VMs receive) saves the current
step and returns cleanly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import jax
import ml_collections

from llm_input import config as config_lib
from llm_input import tokenizers
from llm_input.data import pipeline
from llm_input.errors import ConfigError
from llm_input.model import transformer
from llm_input.model.config import context_length
from llm_input.runs import RunFolder
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import metrics as metrics_lib
from llm_input.train import sample as sample_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib

# Sections of the config that must not change when a run folder is resumed.
FROZEN_SECTIONS = ("model", "tokenizer", "data", "seed")


def _check_run_config(run: RunFolder, cfg) -> None:
  if not run.has_config():
    return
  saved = run.read_config_dict()
  now = json.loads(cfg.to_json_best_effort())
  changed = [k for k in FROZEN_SECTIONS if saved.get(k) != now.get(k)]
  if changed:
    raise ConfigError(f"{run} holds a run with a different {', '.join(changed)} config; resume "
                      "it with the config in its config.json, or use a new --workdir")


def total_steps(cfg, flops_per_step: float) -> int:
  """train.steps, or the steps that spend train.flops_budget (equal-compute comparisons)."""
  if cfg.train.flops_budget > 0:
    return max(1, int(round(cfg.train.flops_budget / flops_per_step)))
  return int(cfg.train.steps)


def prepare_tokenizer(cfg, run: RunFolder, pipe: pipeline.PipelineConfig,
                      options: tokenizers.TokenizerOptions, say=print):
  if (run.tokenizer_dir / "tokenizer.json").exists():
    return tokenizers.load(run.tokenizer_dir)
  t = cfg.tokenizer
  start = time.perf_counter()
  texts = list(pipeline.documents(pipe, "train"))
  tokenizer = tokenizers.train(t.kind, t.vocab_size, texts, options)
  if jax.process_index() == 0:
    tokenizer.save(run.tokenizer_dir)
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


def write_samples(cfg, sample_cfg: sample_lib.SampleConfig, run: RunFolder, model_cfg, params,
                  tokenizer) -> list[dict]:
  sampler = sample_lib.Sampler(model_cfg, jax.device_get(params),
                               context_length(model_cfg, cfg.data.seq_len))
  s = sample_cfg
  out = []
  for i, prompt in enumerate(s.prompts):
    new = sampler.generate(tokenizer.prompt_ids(prompt, cfg.data.add_bos), s.max_new_tokens,
                           temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                           seed=cfg.seed + i, stop_id=tokenizer.eos_id)
    out.append({"prompt": prompt, "text": tokenizer.decode(new)})
  if jax.process_index() == 0:
    blocks = [f"=== prompt: {o['prompt']!r} (temperature {s.temperature}, top_k {s.top_k}, "
              f"top_p {s.top_p})\n{o['prompt']}{o['text']}\n" for o in out]
    run.write_samples("\n".join(blocks))
  return out


def train(cfg: ml_collections.ConfigDict, workdir: str | os.PathLike, *, say=print,
          device_count: int | None = None, stop_after: int | None = None) -> dict:
  """Trains (or resumes) the run in `workdir`. Returns the final metrics.

  `stop_after` ends the loop after that many steps of this call (tests and benchmarks);
  checkpoints and metrics are written as in a full run.
  """
  run = RunFolder(workdir)
  workdir = run.path
  sections = config_lib.validate(cfg, device_count)
  mesh, pipe, optim = sections.mesh, sections.pipeline, sections.optim
  _check_run_config(run, cfg)
  workdir.mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    run.write_config(cfg)

  tokenizer = prepare_tokenizer(cfg, run, pipe, sections.tokenizer, say)
  model_cfg = config_lib.model_config(cfg, tokenizer.vocab_size)
  flops = metrics_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
  total = total_steps(cfg, flops)
  if total != optim.total_steps:
    optim = dataclasses.replace(optim, total_steps=total)
  trainer = step_lib.Trainer(model_cfg, optim, mesh, seed=cfg.seed, rules=sections.rules)
  for note in sharding_lib.replication_notes(transformer.abstract(model_cfg), mesh, sections.rules):
    say(f"note: {note}")
  data_parallel = sharding_lib.data_parallel_size(mesh)
  iterator = iter(pipeline.train_dataset(pipe, tokenizer, process_index=jax.process_index(),
                                         process_count=jax.process_count(),
                                         data_parallel=data_parallel))
  c = sections.checkpoint
  checkpointer = checkpoint_lib.Checkpointer(run.checkpoints_dir, every_steps=c.every_steps,
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
    if jax.process_index() == 0:
      run.truncate_metrics(start)
    say(f"resumed from step {start} in {workdir}")

  writer = metrics_lib.MetricWriter(run, cfg.logging.tensorboard, enabled=jax.process_index() == 0)
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
      last_eval = next((r for r in reversed(run.read_metrics()) if r["split"] == "validation"), None)
      result["validation"] = last_eval
    result["samples"] = write_samples(cfg, sections.sample, run, model_cfg, state["params"], tokenizer)
    if jax.process_index() == 0:
      write_summary(run, cfg, model_cfg, tokenizer, pipe, last_eval, step, flops, loop_seconds)
  return result


def write_summary(run: RunFolder, cfg, model_cfg, tokenizer, pipe, last_eval, steps, flops,
                  seconds) -> None:
  """summary.json: the final figures a sweep table collects."""
  from llm_input.tokenizers import stats  # noqa: PLC0415

  previous = run.read_summary().get("table", {})
  token_stats = stats.compute(tokenizer, list(pipeline.documents(pipe, "validation")))
  run.write_summary({
      "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
      "tokens_per_word": token_stats.tokens_per_word, "bytes_per_token": token_stats.bytes_per_token,
      "unk_rate": token_stats.unk_rate,
      "params": transformer.count_params(model_cfg),
      "steps": steps, "train_flops": flops * steps, "seq_len": cfg.data.seq_len,
      "val_loss": last_eval["loss"] if last_eval else None,
      "val_bits_per_byte": last_eval["bits_per_byte"] if last_eval else None,
      "val_perplexity": last_eval["perplexity"] if last_eval else None,
      "train_time_s": previous.get("train_time_s", 0.0) + seconds,
  })
