"""Evaluation during training (the validation split through the trainer's eval step) and the
run's final figures (summary.json, what a sweep table collects)."""

from __future__ import annotations

import jax

from llm_input.data import pipeline
from llm_input.model import transformer
from llm_input.runs import RunFolder
from llm_input.tokenizers import stats
from llm_input.train import sample as sample_lib
from llm_input.train import step as step_lib


def evaluate(trainer: step_lib.Trainer, params, pipe: pipeline.PipelineConfig, tokenizer,
             max_batches: int = 0, store=None) -> dict:
  """Loss, bits per byte, perplexity and accuracy on the validation split (every process reads
  its rows; `max_batches` > 0 stops early; `store`: the token store already open)."""
  sums = {"loss_sum": 0.0, "tokens": 0.0, "bytes": 0.0, "correct": 0.0}
  batches = pipeline.eval_batches(pipe, tokenizer, process_index=jax.process_index(),
                                  process_count=jax.process_count(),
                                  data_parallel=trainer.data_parallel, store=store)
  for i, batch in enumerate(batches):
    if max_batches and i >= max_batches:
      break
    parts = trainer.eval_step(params, pipeline.global_batch(batch, trainer.batch_sharding))
    for k, v in jax.device_get(parts).items():
      sums[k] += float(v)
  return step_lib.summarize_eval(sums)


def write_summary(run: RunFolder, model_cfg, tokenizer, pipe: pipeline.PipelineConfig, last_eval,
                  steps: int, flops_per_step: float, seconds: float) -> None:
  """summary.json: the final figures a sweep table collects."""
  token_stats = stats.compute(tokenizer, list(pipeline.documents(pipe, "validation")))
  run.write_summary({
      "tokenizer": tokenizer.kind, "vocab_size": tokenizer.vocab_size,
      "tokens_per_word": token_stats.tokens_per_word, "bytes_per_token": token_stats.bytes_per_token,
      "unk_rate": token_stats.unk_rate,
      "params": transformer.count_params(model_cfg),
      "steps": steps, "train_flops": flops_per_step * steps, "seq_len": pipe.seq_len,
      "val_loss": last_eval["loss"] if last_eval else None,
      "val_bits_per_byte": last_eval["bits_per_byte"] if last_eval else None,
      "val_perplexity": last_eval["perplexity"] if last_eval else None,
      "train_time_s": seconds,  # all segments of a resumed run
  })


def finish_run(s, run: RunFolder, params, tokenizer, last_eval, steps: int, seconds: float) -> list[dict]:
  """The end of a finished run (`s`: its `sections.Sections`): samples.txt from every process's
  gathered parameters, and process 0's summary.json. Returns the samples."""
  samples = sample_lib.write_samples(s.sample, run, s.model, params, tokenizer, seq_len=s.pipeline.seq_len,
                                     add_bos=s.pipeline.add_bos, seed=s.seed)
  if jax.process_index() == 0:
    write_summary(run, s.model, tokenizer, s.pipeline, last_eval, steps, s.flops_per_step, seconds)
  return samples
