"""The training loop: one jitted step after another; checkpoints, evaluation and the
divergence guard at the steps that need them. `train(cfg, workdir)` resumes from the newest
complete checkpoint in `workdir`, so the same command continues a killed run; SIGTERM saves the
current step and returns. It leans on `sections` (typed configs), `RunFolder` (the resume
policy), `run_tokenizer`, `guards`, `evaluation`.
"""

from __future__ import annotations

import json
import os
import time

import jax
import ml_collections
import numpy as np

from llm_input import distributed
from llm_input.data import pipeline
from llm_input.model import transformer
from llm_input.runs import RunFolder
from llm_input.train import checkpoint as checkpoint_lib
from llm_input.train import evaluation
from llm_input.train import guards
from llm_input.train import metrics as metrics_lib
from llm_input.train import sections as sections_lib
from llm_input.train import sharding as sharding_lib
from llm_input.train import step as step_lib
from llm_input.train.run_tokenizer import prepare_run


def train(cfg: ml_collections.ConfigDict, workdir: str | os.PathLike, *, say=print,
          device_count: int | None = None, stop_after: int | None = None,
          allow_config_change: bool = False, inject_nonfinite: tuple[int, ...] = ()) -> dict:
  """Trains (or resumes) the run in `workdir`. Returns the final metrics.

  `stop_after` ends the loop after that many steps of this call (tests and benchmarks);
  checkpoints and metrics are written as in a full run. `inject_nonfinite` makes the given
  steps produce NaN parameters once each (fault-injection tests of the divergence guard).
  """
  run = RunFolder(workdir)
  run.check_trainable()
  sections = sections_lib.validate(cfg, device_count)
  distributed.check_same_config(cfg.to_json_best_effort())
  if jax.process_index() != 0:
    say = _quiet  # process 0 speaks for the job
  distributed.check_shared_folder(run.path)
  changes = run.config_changes(cfg, allow_config_change)
  lock = run.lock().acquire() if jax.process_index() == 0 else None
  try:
    tokenizer, store = prepare_run(cfg, run, sections, say)
    loop = _Loop(cfg, run, sections.for_vocab_size(tokenizer.vocab_size), tokenizer, store, changes, say,
                 stop_after, set(inject_nonfinite))
    return loop.run()
  finally:
    if lock is not None:
      lock.release()


class _Loop:
  """One training segment of a run: restore or initialise, step, keep, evaluate, finish."""

  def __init__(self, cfg, run: RunFolder, s: sections_lib.Sections, tokenizer, store, changes: dict,
               say, stop_after: int | None, inject: set):
    self.cfg, self.run_folder, self.s, self.tokenizer, self.say = cfg, run, s, tokenizer, say
    self.store = store  # the token store, opened and checked once for the run
    self.changes, self.stop_after, self.inject = changes, stop_after, inject
    self.lead = jax.process_index() == 0
    self.config_written = run.has_config() and not changes
    self.total = s.optim.total_steps
    self.trainer = step_lib.Trainer(s.model, s.optim, s.mesh, seed=s.seed, rules=s.rules)
    for note in sharding_lib.replication_notes(transformer.abstract(s.model), s.mesh, s.rules):
      say(f"note: {note}")
    guards.check_disk(run.path, self.trainer.abstract_state)
    self.iterator = iter(pipeline.train_dataset(
        s.pipeline, tokenizer, process_index=jax.process_index(), process_count=jax.process_count(),
        data_parallel=self.trainer.data_parallel, say=say, store=self.store))
    self.checkpointer = checkpoint_lib.Checkpointer(run.checkpoints_dir, s.checkpoint)
    self.meta = {"model": json.loads(cfg.model.to_json_best_effort()), "vocab_size": tokenizer.vocab_size,
                 "param_shapes": checkpoint_lib.param_shapes(self.trainer.abstract_state)}
    self.divergence = guards.Divergence(s.train.loss_spike_factor, s.model.vocab_size)
    self.rollbacks, self.pending, self.last_eval = 0, [], None
    self.throughput = metrics_lib.Throughput(s.pipeline.batch_size * s.pipeline.seq_len, s.flops_per_step)
    self.started, self.prior_seconds = time.time(), 0.0

  # -- state in and out --------------------------------------------------------------------
  def seconds(self) -> float:
    """Training time of the whole run (earlier segments included)."""
    return self.prior_seconds + (time.time() - self.started if self.step > self.start else 0.0)

  def save(self, force: bool = True, seconds: float | None = None) -> None:
    seconds = self.seconds() if seconds is None else seconds
    self.checkpointer.save(self.step, self.state, self.iterator.get_state(),
                           {**self.meta, "train_time_s": seconds}, force=force)

  def restore(self) -> None:
    t = self.trainer
    restored = self.checkpointer.restore_latest(t.abstract_state, t.state_shardings, self.iterator)
    if restored is None:
      self.state, self.step = t.init_state(), 0
      self.start = 0
      if self.s.checkpoint.save_step0:
        self.save()
    else:
      self.state, self.step, meta = restored
      self.start = self.step
      self.prior_seconds = float(meta.get("train_time_s", 0.0))
      if self.lead:
        self.run_folder.truncate_metrics(self.start)
      self.say(f"resumed from step {self.start} in {self.run_folder.path}")
    self.writer = metrics_lib.MetricWriter(self.run_folder, self.s.logging.tensorboard, enabled=self.lead,
                                           purge_step=self.start + 1 if restored is not None else None)
    self.bar = metrics_lib.progress_bar(self.s.logging.progress_bar and self.lead, self.total, self.start)

  # -- metrics, fetched every log_every steps ----------------------------------------------
  def flush(self) -> None:
    """Fetches the metrics of the steps run since the last flush in one transfer, checks each
    in order (raises `Diverged` at the first unusable one) and logs those on the log grid.
    Between flushes the host only dispatches steps, so it never waits on the device."""
    if not self.pending:
      return
    pending, self.pending = self.pending, []
    fetched = jax.device_get([metrics for _, metrics in pending])
    for (step, _), raw in zip(pending, fetched):
      values = {k: float(v) for k, v in raw.items()}
      self.divergence.check(step, values)
      self.throughput.count()
      if step % self.s.train.log_every == 0 or step == self.total:
        values.update(self.throughput.rates())
        self.writer.write(step, "train", values)
        if self.bar is not None:
          self.bar.set_postfix(loss=f"{values['loss']:.3f}", tok_s=f"{values['tokens_per_s']:,.0f}")
    if self.bar is not None:
      self.bar.update(len(pending))

  # -- the loop ----------------------------------------------------------------------------
  def run(self) -> dict:
    status = "finished"
    self.restore()
    try:
      with guards.Preemption() as preemption:
        while self.step < self.total:
          try:
            will_save = self.one_step(preemption)
          except guards.Diverged as err:
            self.roll_back(err)
            continue
          if preemption.requested:
            status = "preempted"
            self.save()
            self.say(f"\n{preemption.requested}: saved step {self.step}; rerun the same command to resume")
            break
          if will_save:
            self.save()
          if self.step % self.s.train.eval_every == 0 or self.step == self.total:
            self.evaluate()
          if self.stopping():
            status = "stopped"
            break
        self.flush()
        seconds = self.seconds()
        if status == "finished" and self.step == self.total:
          self.save(force=self.step not in self.checkpointer.steps(), seconds=seconds)
    finally:
      self.close()
    return self.finish(status, seconds)

  def one_step(self, preemption) -> bool:
    """Dispatches a step (its metrics wait for the next flush); returns whether to checkpoint it."""
    batch = pipeline.global_batch(next(self.iterator), self.trainer.batch_sharding)
    if self.step + 1 in self.inject:
      self.inject.discard(self.step + 1)
      self.state = dict(self.state, params=jax.tree.map(lambda x: x * np.nan, self.state["params"]))
    self.state, metrics = self.trainer.train_step(self.state, batch)
    self.checkpointer.check()  # a background save that failed stops the run now
    self.step += 1
    self.pending.append((self.step, metrics))
    if jax.process_count() > 1:  # a signal on any host stops every host at the same step
      if distributed.any_process(preemption.requested is not None) and preemption.requested is None:
        preemption.requested = "a peer's signal"
    # Anything that keeps this step (a checkpoint, an evaluation, the end, the config record)
    # first checks its metrics: a diverged step is never saved.
    will_save = self.checkpointer.will_save(self.step)
    if (preemption.requested or will_save or self.step == self.total or not self.config_written
        or self.step % self.s.train.eval_every == 0 or self.step % self.s.train.log_every == 0
        or self.stopping()):
      self.flush()
    if not self.config_written:
      # The first good step: only now is this a run whose settings deserve a record.
      if self.lead:
        self.run_folder.write_config(self.cfg)
        if self.changes:
          self.run_folder.record_config_change(self.start, self.changes)
      self.config_written = True
    return will_save

  def stopping(self) -> bool:
    return self.stop_after is not None and self.step - self.start >= self.stop_after

  def evaluate(self) -> None:
    self.last_eval = evaluation.evaluate(self.trainer, self.state["params"], self.s.pipeline,
                                         self.tokenizer, self.s.train.eval_batches, store=self.store)
    self.writer.write(self.step, "validation", self.last_eval)
    self.say(f"\nstep {self.step}: validation loss {self.last_eval['loss']:.4f}, "
             f"bits/byte {self.last_eval['bits_per_byte']:.4f}")

  def roll_back(self, err: guards.Diverged) -> None:
    """A diverged step: stop (the default) or return to the last good checkpoint and skip the
    batches since, at most `guards.MAX_ROLLBACKS` times."""
    if self.s.train.on_nonfinite == "stop" or self.rollbacks >= guards.MAX_ROLLBACKS:
      self.writer.write(err.step, "diverged", {"rollbacks": self.rollbacks})  # what report says
      self.checkpointer.wait()
      raise guards.stopped(err, self.rollbacks, self.checkpointer.steps(), self.checkpointer.directory)
    self.state, good_step = self.checkpointer.roll_back(err, self.trainer.abstract_state,
                                                        self.trainer.state_shardings, self.iterator)
    self.rollbacks += 1
    self.pending = []
    skipped = self.step - good_step  # every batch read since the checkpoint (a flush can lag the bad step)
    self.writer.write(err.step, "rollback", {"to_step": good_step, "skipped_batches": skipped})
    self.say(f"\nstep {err.step}: {err.problem}; rolled back to step {good_step} and skipped the "
             f"{skipped} batches since (rollback {self.rollbacks} of at most {guards.MAX_ROLLBACKS})")
    self.step = good_step
    if self.bar is not None:
      self.bar.n = self.step

  def close(self) -> None:
    self.checkpointer.close()
    if self.bar is not None:
      self.bar.close()
    self.writer.close()

  def finish(self, status: str, seconds: float) -> dict:
    """The result; for a finished run also its samples and summary.json."""
    result = {"status": status, "step": self.step, "workdir": str(self.run_folder.path),
              "validation": self.last_eval}
    if status != "finished":
      return result
    if self.last_eval is None:  # a finished run reopened: report its last evaluation
      self.last_eval = result["validation"] = self.run_folder.last_validation()
    result["samples"] = evaluation.finish_run(self.s, self.run_folder, self.state["params"], self.tokenizer,
                                              self.last_eval, self.step, seconds)
    return result


def _quiet(*args, **kwargs) -> None:
  pass
