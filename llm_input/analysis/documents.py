"""Validation loss per held-out document, so intervals can include the text's own variance.

A run's validation figure is one number over the whole held-out split; whether a difference
between two arms would survive other held-out text depends on how it varies from document to
document. `document_losses` scores exactly the evaluation's windows and targets (the windows
tile the split's token stream; `data.pipeline.windows`: no target across a document boundary)
and sums each target's loss and bytes into the document it belongs to, so the documents' sums
add up to the run's own validation figure. `analysis.stats.bootstrap_difference` resamples
them (`llm-input eval --run R` writes them to the run's val_documents.json).
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import nnx

from llm_input.data import pipeline
from llm_input.errors import ConfigError
from llm_input.model import transformer
from llm_input.runs import RunFolder
from llm_input.train import reload
from llm_input.train import step as step_lib


def document_losses(run: reload.Run, batch_size: int = 0, say=print) -> dict:
  """{"step", "split", "documents": [{index, loss_nats, bytes, tokens, bits_per_byte}],
  "bits_per_byte"} for the run's checkpoint at `run.step` on its validation split."""
  if jax.process_count() > 1:
    raise ConfigError("llm-input eval runs in one process (it reads the whole validation split)")
  pipe = pipeline.PipelineConfig.from_config(run.config)
  store = pipeline.open_store(pipe, run.tokenizer, say)
  split = store.split(pipe.split_name("validation"))
  graphdef, _ = nnx.split(transformer.abstract(run.model_cfg), nnx.Param)

  @jax.jit
  def token_losses(params, batch):
    model = nnx.merge(graphdef, params)
    logits_BxLxV = model(batch["inputs"], batch["positions"], batch["segment_ids"])
    log_z_BxL, target_logit_BxL, _ = step_lib.log_z_and_target_logit(logits_BxLxV, batch["targets"], False)
    return (log_z_BxL - target_logit_BxL) * batch["loss_mask"]

  length = pipe.seq_len + 1
  rows = batch_size or pipe.batch_size
  n_docs = len(split.docs) - 1
  loss = np.zeros(n_docs, np.float64)
  nbytes = np.zeros(n_docs, np.int64)
  tokens = np.zeros(n_docs, np.int64)
  starts = np.arange(0, split.num_tokens, length)  # the evaluation's windows (`eval_batches`)
  for first in range(0, len(starts), rows):
    chosen = starts[first:first + rows]
    batch = pipeline.windows(split, chosen, length)
    pad = rows - len(chosen)  # a fixed batch shape: one compilation
    padded = {k: np.pad(v, ((0, pad), (0, 0))) for k, v in batch.items()}
    per_token = np.asarray(token_losses(run.params, padded), np.float64)[:len(chosen)]
    mask = batch["loss_mask"].astype(bool)
    # A counted target's input lies in the same document (the mask drops those that do not),
    # so either index names the document; the target's is used.
    target_index = chosen[:, None] + 1 + np.arange(pipe.seq_len)[None, :]
    doc = split.doc_index(np.minimum(target_index, split.num_tokens - 1))[mask]
    loss += np.bincount(doc, per_token[mask], minlength=n_docs)
    nbytes += np.bincount(doc, batch["target_bytes"][mask], minlength=n_docs).astype(np.int64)
    tokens += np.bincount(doc, minlength=n_docs)
  documents = [{"index": i, "loss_nats": float(loss[i]), "bytes": int(nbytes[i]), "tokens": int(tokens[i]),
                "bits_per_byte": float(loss[i] / (math.log(2) * max(nbytes[i], 1)))} for i in range(n_docs)]
  return {"step": run.step, "split": pipe.split_name("validation"), "seq_len": pipe.seq_len,
          "documents": documents, "bits_per_byte": float(loss.sum() / (math.log(2) * max(nbytes.sum(), 1)))}


def run_documents(workdir, say=print) -> dict:
  """The run's per-document losses at its latest checkpoint, computed once and kept in
  val_documents.json (recomputed when a later checkpoint exists)."""
  folder = RunFolder(workdir)
  steps = folder.checkpoint_steps()
  kept = folder.read_documents()
  if kept and steps and kept.get("step") == steps[-1]:
    return kept
  result = document_losses(reload.load_run(workdir), say=say)
  folder.write_documents(result)
  return result
