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
import math
import os
import pathlib
import signal
import time

import jax
import ml_collections
import numpy as np

from llm_input import config as config_lib
from llm_input import distributed
from llm_input import tokenizers
from llm_input.data import pipeline
from llm_input.errors import ConfigError, DiskFullError
from llm_input.model import transformer
from llm_input.model.config import context_length
from llm_input.runs import RunFolder, directory_fingerprint
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import metrics as metrics_lib
from llm_input.train import sample as sample_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib

# Sections of the config that must not change when a run folder is resumed.
FROZEN_SECTIONS = ("model", "tokenizer", "data", "seed")
# Sections that may change on resume only with --allow-config-change (and are recorded).
GUARDED_SECTIONS = ("optimizer", "schedule", "train")
# Fields added after run folders were written, with the value that means what those runs did:
# a config.json without them resumes as if it had them at that value.
ADDED_FIELDS = {"tokenizer.path": "", "model.qkv_bias": None, "schedule.warmup_fraction": 0.0,
                "schedule.decay_fraction": 0.2, "checkpoint.keep_steps": []}
ON_NONFINITE = config_lib.ON_NONFINITE
MAX_ROLLBACKS = 3


def _config_changes(run: RunFolder, cfg, allow_change: bool) -> dict:
  """{field: [saved, now]} of a resumed run's settings; raises for the ones not allowed."""
  if not run.has_config():
    return {}
  saved = run.read_config_dict()
  for field, value in ADDED_FIELDS.items():
    section, key = field.split(".")
    if isinstance(saved.get(section), dict):
      saved[section].setdefault(key, value)
  now = json.loads(cfg.to_json_best_effort())
  frozen = [k for k in FROZEN_SECTIONS if saved.get(k) != now.get(k)]
  if frozen:
    raise ConfigError(f"{run} holds a run with a different {', '.join(frozen)} config; resume "
                      "it with the config in its config.json, or use a new --workdir")
  before, after = config_lib.flatten(saved), config_lib.flatten(now)
  changes = {k: [before.get(k), after.get(k)] for k in sorted(set(before) | set(after))
             if before.get(k) != after.get(k)}
  guarded = [k for k in changes if k.split(".")[0] in GUARDED_SECTIONS]
  if guarded and not allow_change:
    shown = ", ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in guarded[:4])
    raise ConfigError(f"resuming {run} with changed settings ({shown}); rerun with "
                      "--allow-config-change to continue with them (the change is recorded in "
                      "the run folder and shown by the report), or use the config in its config.json")
  return changes


def _clear_unstarted(run: RunFolder, say) -> None:
  """Files left by a start that failed before its first step (marked by its pending config,
  with no config.json) belong to no run and would block the corrected command, so they go.
  A folder without either marker is left alone (its checkpoints are checked by shape)."""
  if run.has_config() or not run.pending_config_path.exists():
    return
  import shutil  # noqa: PLC0415

  leftovers = [p for p in (run.checkpoints_dir, run.metrics_path, run.tensorboard_dir,
                           run.summary_path, run.samples_path, run.changes_path) if p.exists()]
  if run.checkpoints_dir.exists() and any(not c.name.isdigit() and not c.name.startswith(".")
                                          for c in run.checkpoints_dir.iterdir()):
    raise ConfigError(f"{run.checkpoints_dir} holds files that are not llm_input checkpoints; "
                      "use another --workdir")
  for path in leftovers:
    shutil.rmtree(path) if path.is_dir() else path.unlink()
  if leftovers:
    say(f"note: {run} had no config.json (an earlier start failed before its first step); "
        f"removed what it left: {', '.join(p.name for p in leftovers)}")


def total_steps(cfg, flops_per_step: float) -> int:
  """train.steps, or the steps that spend train.flops_budget (equal-compute comparisons)."""
  if cfg.train.flops_budget > 0:
    return max(1, int(round(cfg.train.flops_budget / flops_per_step)))
  return int(cfg.train.steps)


def _given_tokenizer(run: RunFolder, source: pathlib.Path, say):
  """`tokenizer.path`: that folder's tokenizer, copied into the run (or checked against its copy)."""
  tokenizer = tokenizers.load(source)
  if (run.tokenizer_dir / "tokenizer.json").exists():
    if directory_fingerprint(run.tokenizer_dir) != directory_fingerprint(source):
      raise ConfigError(f"{run.tokenizer_dir} is not the tokenizer at tokenizer.path={source}; "
                        "put the run's tokenizer back, or use a new --workdir")
    run.check_tokenizer()
  elif jax.process_index() == 0:
    tokenizer.save(run.tokenizer_dir)
    say(f"tokenizer: {tokenizer.kind} ({tokenizer.vocab_size:,} ids) from {source}")
  if jax.process_index() == 0 and not run.read_run_json().get("tokenizer_sha256"):
    run.record_tokenizer()
  return tokenizer


def prepare_tokenizer(cfg, run: RunFolder, pipe: pipeline.PipelineConfig,
                      options: tokenizers.TokenizerOptions, say=print):
  """The run's tokenizer: the one in the folder (checked against the run), or a new one."""
  t = cfg.tokenizer
  if t.path:
    return _given_tokenizer(run, pathlib.Path(t.path), say)
  if (run.tokenizer_dir / "tokenizer.json").exists():
    tokenizer = tokenizers.load(run.tokenizer_dir)
    matches = tokenizer.kind == t.kind and (
        tokenizer.fixed_vocab_size is not None or tokenizer.vocab_size == t.vocab_size
        or (t.kind in ("char", "word") and tokenizer.vocab_size <= t.vocab_size))
    if run.has_config():  # a resumed run: the tokenizer must be the one it was trained with
      if not matches:
        raise ConfigError(f"{run.tokenizer_dir} holds a {tokenizer.kind} tokenizer of "
                          f"{tokenizer.vocab_size:,} ids but config.json says tokenizer.kind="
                          f"{t.kind}, vocab_size={t.vocab_size}; put the run's tokenizer back or "
                          "use a new --workdir")
      if not run.read_run_json().get("tokenizer_sha256"):
        run.record_tokenizer()  # a run folder from before fingerprints were recorded
      run.check_tokenizer()
      return tokenizer
    if matches:
      run.record_tokenizer()
      return tokenizer
    # Replaced only when a trainer of this folder wrote it (run.json records its fingerprint)
    # and never trained: a tokenizer someone put here is theirs.
    ours = run.read_run_json().get("tokenizer_sha256") == directory_fingerprint(run.tokenizer_dir)
    if not (ours and run.pending_config_path.exists()):
      raise ConfigError(f"{run.tokenizer_dir} holds a {tokenizer.kind} tokenizer of "
                        f"{tokenizer.vocab_size:,} ids but the config asks for tokenizer.kind="
                        f"{t.kind}, vocab_size={t.vocab_size}; to train with it, set "
                        f"--config.tokenizer.path={run.tokenizer_dir} (or the matching kind and "
                        "vocab_size); otherwise move it away or use a new --workdir")
    say(f"note: {run.tokenizer_dir} ({tokenizer.kind}, {tokenizer.vocab_size:,} ids) was left by "
        "a start that never trained; replacing it")
  start = time.perf_counter()
  texts = list(pipeline.documents(pipe, "train"))
  tokenizer = tokenizers.train(t.kind, t.vocab_size, texts, options)
  if jax.process_index() == 0:
    tokenizer.save(run.tokenizer_dir)
    run.record_tokenizer()
  say(f"trained {t.kind} tokenizer ({tokenizer.vocab_size:,} ids) on {pipe.corpus} in "
      f"{time.perf_counter() - start:.1f} s")
  return tokenizer


class _Preemption:
  """Turns SIGTERM (preemption) and SIGINT (Ctrl-C) into a flag the loop checks between steps."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.requested = None  # the signal's name once one arrived
    self._previous = {}

  def __enter__(self):
    for sig in self.SIGNALS:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread
        pass
    return self

  def _handle(self, signum, frame):
    self.requested = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, previous in self._previous.items():
      signal.signal(sig, previous)


class _Divergence:
  """Decides whether a step's metrics are unusable: non-finite loss, gradient or update; a loss
  above 10 x ln(vocab) (ten times a uniform guess: nothing trains back from there); or, with
  train.loss_spike_factor > 0, a loss above that multiple of the recent median."""

  def __init__(self, spike_factor: float, vocab_size: int, window: int = 100, warmup: int = 20):
    self.spike_factor, self.window, self.warmup = spike_factor, window, warmup
    self.ceiling = 10 * math.log(vocab_size)
    self.recent: list[float] = []

  def problem(self, values: dict) -> str:
    bad = [k for k in ("loss", "grad_norm", "update_norm") if not math.isfinite(values[k])]
    if bad:
      return "non-finite " + ", ".join(f"{k} ({values[k]})" for k in bad)
    loss = values["loss"]
    if loss > self.ceiling:
      return (f"loss {loss:.4g} is above 10 x ln(vocab) = {self.ceiling:.1f} (a uniform guess "
              f"scores {self.ceiling / 10:.2f}): the run has diverged")
    if self.spike_factor > 0 and len(self.recent) >= self.warmup:
      median = float(np.median(self.recent))
      if loss > self.spike_factor * median:
        return (f"loss spike: {loss:.4g} > train.loss_spike_factor={self.spike_factor} x the "
                f"median {median:.4g} of the last {len(self.recent)} steps")
    self.recent = (self.recent + [loss])[-self.window:]
    return ""


def _check_disk(run: RunFolder, abstract_state) -> None:
  """One checkpoint must fit on the run's disk before a step is spent."""
  import shutil  # noqa: PLC0415

  need = sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(abstract_state))
  free = shutil.disk_usage(run.path).free
  if free < need:
    raise DiskFullError(f"no space left on the device of {run.path}: a checkpoint needs "
                        f"{need / 2**20:,.1f} MiB and {free / 2**20:,.1f} MiB are free; free space "
                        "and rerun the same command")


def evaluate(trainer, params, pipe, tokenizer, max_batches: int = 0) -> dict:
  sums = {"loss_sum": 0.0, "tokens": 0.0, "bytes": 0.0, "correct": 0.0}
  batches = pipeline.eval_batches(pipe, tokenizer, process_index=jax.process_index(),
                                  process_count=jax.process_count(),
                                  data_parallel=trainer.data_parallel)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    parts = trainer.eval_step(params, pipeline.global_batch(batch, trainer.batch_sharding))
    for k, v in jax.device_get(parts).items():
      sums[k] += float(v)
  return step_lib.summarize_eval(sums)


def write_samples(cfg, sample_cfg: sample_lib.SampleConfig, run: RunFolder, model_cfg, params,
                  tokenizer) -> list[dict]:
  """Process 0 samples from the gathered parameters and writes samples.txt."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    params = multihost_utils.process_allgather(params, tiled=True)  # collective: every process
  if jax.process_index() != 0:
    return []
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
          device_count: int | None = None, stop_after: int | None = None,
          allow_config_change: bool = False, inject_nonfinite: tuple[int, ...] = ()) -> dict:
  """Trains (or resumes) the run in `workdir`. Returns the final metrics.

  `stop_after` ends the loop after that many steps of this call (tests and benchmarks);
  checkpoints and metrics are written as in a full run. `inject_nonfinite` makes the given
  steps produce NaN parameters once each (fault-injection tests of the divergence guard).
  """
  run = RunFolder(workdir)
  workdir = run.path
  if workdir.exists() and not workdir.is_dir():
    raise ConfigError(f"--workdir {str(workdir)!r} is a file, not a folder; choose a folder path")
  if run.imported():
    # Its checkpoint holds parameters only (no optimizer or data state to resume from).
    raise ConfigError(f"{workdir} holds a model imported from Hugging Face "
                      f"({run.imported()['architecture']}); training it is not supported: sample, "
                      "report or export-hf it, and train new models in a new --workdir")
  sections = config_lib.validate(cfg, device_count)
  distributed.check_same_config(cfg.to_json_best_effort())
  if jax.process_index() != 0:
    say = _quiet  # process 0 speaks for the job
  distributed.check_shared_folder(workdir)
  changes = _config_changes(run, cfg, allow_config_change)
  lock = run.lock().acquire() if jax.process_index() == 0 else None
  try:
    return _train(cfg, run, sections, changes, say, stop_after, set(inject_nonfinite))
  finally:
    if lock is not None:
      lock.release()


def _train(cfg, run: RunFolder, sections, changes: dict, say, stop_after, inject: set) -> dict:
  workdir = run.path
  mesh, pipe, optim = sections.mesh, sections.pipeline, sections.optim
  fresh = not run.has_config()
  lead = jax.process_index() == 0
  # Process 0 prepares the folder, the tokenizer and the token store; the others wait for it
  # and then read what it wrote.
  if lead:
    _clear_unstarted(run, say)
    if fresh:
      run.write_pending_config(cfg)
    tokenizer = prepare_tokenizer(cfg, run, pipe, sections.tokenizer, say)
    pipeline.open_store(pipe, tokenizer, say)
  distributed.barrier("llm_input: run folder, tokenizer and token store ready")
  if not lead:
    tokenizer = tokenizers.load(run.tokenizer_dir)
    run.check_tokenizer()
  model_cfg = config_lib.model_config(cfg, tokenizer.vocab_size)
  flops = metrics_lib.flops_per_step(model_cfg, cfg.data.batch_size, cfg.data.seq_len)
  total = total_steps(cfg, flops)
  if total != optim.total_steps:
    optim = dataclasses.replace(optim, total_steps=total)
  trainer = step_lib.Trainer(model_cfg, optim, mesh, seed=cfg.seed, rules=sections.rules)
  for note in sharding_lib.replication_notes(transformer.abstract(model_cfg), mesh, sections.rules):
    say(f"note: {note}")
  _check_disk(run, trainer.abstract_state)
  iterator = iter(pipeline.train_dataset(pipe, tokenizer, process_index=jax.process_index(),
                                         process_count=jax.process_count(),
                                         data_parallel=trainer.data_parallel, say=say))
  c = sections.checkpoint
  checkpointer = checkpoint_lib.Checkpointer(run.checkpoints_dir, every_steps=c.every_steps,
                                             every_minutes=c.every_minutes, keep=c.keep,
                                             async_save=c.async_save, keep_steps=c.keep_steps)
  base_meta = {"model": json.loads(cfg.model.to_json_best_effort()), "vocab_size": tokenizer.vocab_size,
               "param_shapes": checkpoint_lib.param_shapes(trainer.abstract_state)}
  started = time.time()
  prior_seconds = 0.0  # training time of earlier segments of this run

  def save(step, state, force=False, seconds=None):
    if seconds is None:
      seconds = prior_seconds + time.time() - started
    meta = {**base_meta, "train_time_s": seconds}
    return checkpointer.save(step, state, iterator.get_state(), meta, force=force)

  restored = checkpointer.restore_latest(trainer.abstract_state, trainer.state_shardings, iterator)
  if restored is None:
    state, start = trainer.init_state(), 0
    if c.save_step0:
      save(0, state, force=True)
  else:
    state, start, meta = restored
    prior_seconds = float(meta.get("train_time_s", 0.0))
    if jax.process_index() == 0:
      run.truncate_metrics(start)
    say(f"resumed from step {start} in {workdir}")

  writer = metrics_lib.MetricWriter(run, cfg.logging.tensorboard, enabled=jax.process_index() == 0,
                                    purge_step=start + 1 if restored is not None else None)
  tokens_per_step = cfg.data.batch_size * cfg.data.seq_len
  bar = None
  if cfg.logging.progress_bar and jax.process_index() == 0:
    from tqdm import tqdm  # noqa: PLC0415

    bar = tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)

  pending = None  # (step, metrics) of the previous step, fetched one step behind
  window_start, window_steps = time.perf_counter(), 0
  last_eval = None
  status = "finished"
  divergence = _Divergence(cfg.train.loss_spike_factor, model_cfg.vocab_size)
  rollbacks = 0
  config_written = not fresh and not changes
  multi_process = jax.process_count() > 1

  def record(step_and_metrics) -> dict:
    """Fetches a step's metrics, checks them, logs them; returns them."""
    nonlocal window_start, window_steps
    step, values = step_and_metrics
    values = {k: float(v) for k, v in jax.device_get(values).items()}
    problem = divergence.problem(values)
    if problem:
      raise _Diverged(step, problem)
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
    return values

  def flush_pending():
    nonlocal pending
    if pending is not None:
      step_and_metrics, pending = pending, None
      record(step_and_metrics)

  try:
    with _Preemption() as preemption:
      step = start
      while step < total:
        try:
          batch = pipeline.global_batch(next(iterator), trainer.batch_sharding)
          if step + 1 in inject:
            inject.discard(step + 1)
            state = dict(state, params=jax.tree.map(lambda x: x * np.nan, state["params"]))
          state, metrics = trainer.train_step(state, batch)
          checkpointer.check()  # a background save that failed stops the run now
          step += 1
          flush_pending()
          pending = (step, metrics)
          if multi_process:  # a signal on any host stops every host at the same step
            stop_signal = distributed.any_process(preemption.requested is not None)
            if stop_signal and preemption.requested is None:
              preemption.requested = "a peer's signal"
          # Anything that keeps this step (a checkpoint, an evaluation, the end, the config
          # record) first checks its metrics: a diverged step is never saved.
          will_save = checkpointer.will_save(step)
          keeps = (preemption.requested or will_save or step == total
                   or step % cfg.train.eval_every == 0 or not config_written
                   or (stop_after is not None and step - start >= stop_after))
          if keeps:
            flush_pending()
          if not config_written:
            # The first good step: only now is this a run whose settings deserve a record.
            if jax.process_index() == 0:
              run.write_config(cfg)
              if changes:
                run.record_config_change(start, changes)
            config_written = True
        except _Diverged as err:
          if cfg.train.on_nonfinite == "stop" or rollbacks >= MAX_ROLLBACKS:
            writer.write(err.step, "diverged", {"rollbacks": rollbacks})  # what report says
            checkpointer.wait()
            good = checkpointer.steps()
            where = (f"the last good checkpoint is step {good[-1]} in {checkpointer.directory}"
                     if good else "no checkpoint was saved")
            extra = (f" after {rollbacks} rollbacks" if rollbacks else "")
            raise checkpoint_lib.NonFiniteError(
                f"step {err.step}: {err.problem}{extra}; stopped before saving it ({where}). Lower "
                "optimizer.learning_rate (or set train.on_nonfinite=rollback) and rerun the same "
                "command to continue from that checkpoint") from None
          checkpointer.wait()
          position = iterator.get_state()
          back = checkpointer.restore_latest(trainer.abstract_state, trainer.state_shardings,
                                             iterator, below=err.step)
          if back is None:
            raise checkpoint_lib.NonFiniteError(
                f"step {err.step}: {err.problem}; no earlier checkpoint to roll back to") from None
          state, good_step, _ = back
          iterator.set_state(position)  # skip the batches since the checkpoint, the bad one included
          rollbacks += 1
          pending = None
          writer.write(err.step, "rollback", {"to_step": good_step, "skipped_batches": err.step - good_step})
          say(f"\nstep {err.step}: {err.problem}; rolled back to step {good_step} and skipped "
              f"the {err.step - good_step} batches since (rollback {rollbacks} of at most {MAX_ROLLBACKS})")
          step = good_step
          if bar is not None:
            bar.n = step
          continue
        if preemption.requested:
          status = "preempted"
          save(step, state, force=True)
          say(f"\n{preemption.requested}: saved step {step}; rerun the same command to resume")
          break
        if will_save:
          save(step, state, force=True)
        if step % cfg.train.eval_every == 0 or step == total:
          last_eval = evaluate(trainer, state["params"], pipe, tokenizer, cfg.train.eval_batches)
          writer.write(step, "validation", last_eval)
          say(f"\nstep {step}: validation loss {last_eval['loss']:.4f}, "
              f"bits/byte {last_eval['bits_per_byte']:.4f}")
        if stop_after is not None and step - start >= stop_after:
          status = "stopped"
          break
      flush_pending()
      seconds = prior_seconds + (time.time() - started if step > start else 0.0)
      if status == "finished" and step == total:
        save(step, state, force=step not in checkpointer.steps(), seconds=seconds)
  finally:
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
      write_summary(run, cfg, model_cfg, tokenizer, pipe, last_eval, step, flops, seconds)
  return result


def _quiet(*args, **kwargs) -> None:
  pass


class _Diverged(Exception):
  def __init__(self, step: int, problem: str):
    super().__init__(problem)
    self.step, self.problem = step, problem


def write_summary(run: RunFolder, cfg, model_cfg, tokenizer, pipe, last_eval, steps, flops,
                  seconds) -> None:
  """summary.json: the final figures a sweep table collects."""
  from llm_input.tokenizers import stats  # noqa: PLC0415

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
      "train_time_s": seconds,  # all segments of a resumed run
  })
