"""Per-document validation losses (analysis/documents.py, `llm-input eval`): they add up to the
run's own validation figure, and each document gets exactly its own targets and bytes."""

import json
import math

import numpy as np
import pytest

from llm_input import cli, tokenizers
from llm_input.analysis import documents
from llm_input.data import pipeline
from llm_input.runs import RunFolder
from llm_input.train import loop

from helpers import small_config


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory):
  """A run evaluated on its whole validation split (several documents) on one device, where
  the training evaluation takes the chunked head-and-loss path and `llm-input eval` does not."""
  workdir = tmp_path_factory.mktemp("documents") / "run"
  cfg = small_config(*corpus, "train.steps=6", "train.eval_every=6", "train.eval_batches=0",
                     "data.validation_percent=20", "model.head_loss_chunk=8")
  result = loop.train(cfg, workdir, say=lambda *a: None, device_count=1)
  return workdir, cfg, result["validation"]


def test_document_losses_add_up_to_the_runs_validation_figure(run, capsys):
  workdir, cfg, validation = run
  assert cli.main(["eval", "--run", str(workdir), "--json"]) == 0
  result = json.loads(capsys.readouterr().out)
  docs = result["documents"]
  store = pipeline.open_store(pipeline.PipelineConfig.from_config(cfg), tokenizers.load(RunFolder(workdir).tokenizer_dir))
  assert len(docs) == store.meta["splits"]["validation"]["documents"] >= 3
  loss = sum(d["loss_nats"] for d in docs)
  assert sum(d["bytes"] for d in docs) == validation["bytes"]
  assert sum(d["tokens"] for d in docs) == validation["tokens"]
  assert loss / (math.log(2) * validation["bytes"]) == pytest.approx(validation["bits_per_byte"], rel=1e-5)
  assert result["bits_per_byte"] == pytest.approx(validation["bits_per_byte"], rel=1e-5)
  assert RunFolder(workdir).read_documents() == result  # kept for tables and the bootstrap


def test_each_document_gets_the_bytes_of_its_own_targets(run):
  """By hand from the token store: a document's targets are its tokens but its first (whose
  input lies in the previous document) and any that opens an evaluation window."""
  workdir, cfg, _ = run
  pipe = pipeline.PipelineConfig.from_config(cfg)
  split = pipeline.open_store(pipe, tokenizers.load(RunFolder(workdir).tokenizer_dir)).split("validation")
  result = RunFolder(workdir).read_documents() or documents.run_documents(workdir, say=lambda *a: None)
  window = pipe.seq_len + 1
  nbytes = np.asarray(split.nbytes, np.int64)
  for d, record in enumerate(result["documents"]):
    index = np.arange(split.docs[d] + 1, split.docs[d + 1])
    targets = index[index % window != 0]
    assert record["tokens"] == len(targets)
    assert record["bytes"] == int(nbytes[targets].sum())

