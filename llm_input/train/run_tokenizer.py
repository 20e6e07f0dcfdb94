"""The tokenizer a run trains with: the one in its folder (checked against the run), the one
named by `tokenizer.path` (copied in), or a new one trained on the corpus's train split.

Process 0 decides and saves; the run folder records the tokenizer's fingerprint in run.json.
"""

from __future__ import annotations

import pathlib
import time

import jax

from llm_input import distributed
from llm_input import tokenizers
from llm_input.data import pipeline
from llm_input.errors import ConfigError
from llm_input.fileio import directory_fingerprint
from llm_input.runs import RunFolder
from llm_input.train.sections import Sections, TokenizerSection


def _given_tokenizer(run: RunFolder, source: pathlib.Path, say):
  """`tokenizer.path`: that folder's tokenizer, copied into the run (or checked against its copy)."""
  tokenizer = tokenizers.load(source)
  saved = None
  if (run.tokenizer_dir / "tokenizer.json").exists():
    if directory_fingerprint(run.tokenizer_dir) != directory_fingerprint(source):
      raise ConfigError(f"{run.tokenizer_dir} is not the tokenizer at tokenizer.path={source}; "
                        "put the run's tokenizer back, or use a new --workdir")
    run.check_tokenizer()
  elif jax.process_index() == 0:
    tokenizer.save(run.tokenizer_dir)
    saved = tokenizer
    say(f"tokenizer: {tokenizer.kind} ({tokenizer.vocab_size:,} ids) from {source}")
  if jax.process_index() == 0 and not run.read_run_json().get("tokenizer_sha256"):
    run.record_tokenizer(saved)
  return tokenizer


def prepare_tokenizer(t: TokenizerSection, run: RunFolder, pipe: pipeline.PipelineConfig, say=print):
  """The run's tokenizer: the one in the folder (checked against the run), or a new one."""
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
  tokenizer = tokenizers.train(t.kind, t.vocab_size, texts, t.options)
  if jax.process_index() == 0:
    tokenizer.save(run.tokenizer_dir)
    run.record_tokenizer(tokenizer)
  say(f"trained {t.kind} tokenizer ({tokenizer.vocab_size:,} ids) on {pipe.corpus} in "
      f"{time.perf_counter() - start:.1f} s")
  return tokenizer


def prepare_run(cfg, run: RunFolder, sections: Sections, say):
  """Before a run's first step: process 0 clears what a failed start left, marks the folder as
  started, settles the tokenizer and builds the token store; the others wait for it and then
  read what it wrote. Returns (tokenizer, token store), the store opened once for the run."""
  if jax.process_index() == 0:
    run.clear_unstarted(say)
    if not run.has_config():
      run.write_pending_config(cfg)
    tokenizer = prepare_tokenizer(sections.tokenizer, run, sections.pipeline, say)
    store = pipeline.open_store(sections.pipeline, tokenizer, say)
  distributed.barrier("llm_input: run folder, tokenizer and token store ready")
  if jax.process_index() != 0:
    tokenizer = tokenizers.load(run.tokenizer_dir)
    run.check_tokenizer()
    store = pipeline.open_store(sections.pipeline, tokenizer, say)
  return tokenizer, store
