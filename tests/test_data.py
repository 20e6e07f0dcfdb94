"""Corpora and the grain pipeline: offline build, splits, packing, determinism, resume."""

import time

import grain
import numpy as np
import pytest

from llm_input import cli, tokenizers
from llm_input.data import builders, corpora, pipeline
from llm_input.errors import DataError

from helpers import make_text_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  root = tmp_path_factory.mktemp("data")
  folder = make_text_corpus(root / "texts")
  data_dir = root / "cache"
  texts = [p.read_text() for p in sorted(folder.glob("*.txt"))]
  return {"name": f"text:{folder}", "data_dir": str(data_dir), "texts": texts,
          "byte": tokenizers.train("byte", 259, texts),
          "bpe": tokenizers.train("bpe", 300, texts), "folder": folder}


def cfg_for(corpus, **kw):
  values = dict(corpus=corpus["name"], data_dir=corpus["data_dir"], seq_len=16, batch_size=4)
  values.update(kw)
  return pipeline.PipelineConfig(**values)


def test_play_markdown_becomes_plain_text():
  markdown = ("# A Play\n\n## ACT I\n\n### SCENE I. A room.\n\n_Enter HAMLET_\n\n**HAMLET**  \n"
              "To be, or not to be\\--that is  \nthe question. _\\[Aside]_  \n\n\n**OPHELIA**  \nMy lord.\n")
  assert corpora.play_to_text(markdown) == (
      "A Play\n\nACT I\n\nSCENE I. A room.\n\nEnter HAMLET\n\nHAMLET:\nTo be, or not to be--that is\n"
      "the question. [Aside]\n\nOPHELIA:\nMy lord.\n")


def test_default_corpus_builds_offline_and_is_reused(tmp_path):
  start = time.perf_counter()
  builder = builders.prepare("shakespeare", str(tmp_path))
  splits = builder.info.splits
  assert splits["train"].num_examples + splits["validation"].num_examples == 38
  assert splits["validation"].num_examples >= 1
  docs = list(pipeline.documents(pipeline.PipelineConfig(data_dir=str(tmp_path)), "train"))
  assert any(d.startswith("Hamlet") for d in docs)
  hamlet = next(d for d in docs if d.startswith("Hamlet"))
  assert "HAMLET:\nTo be, or not to be" in hamlet and "**" not in hamlet
  assert (tmp_path / "llm_input_shakespeare" / "1.0.0").is_dir()
  assert list((tmp_path / "llm_input_shakespeare" / "1.0.0").glob("*.array_record*"))
  first = time.perf_counter() - start
  start = time.perf_counter()
  builders.prepare("shakespeare", str(tmp_path))
  assert time.perf_counter() - start < max(first / 2, 0.5)  # reused, not rebuilt


def test_text_corpus_splits_by_document_hash(corpus):
  builder = builders.prepare(corpus["name"], corpus["data_dir"])
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert splits["train"] + splits["validation"] == 40
  expected = sum(corpora.is_validation(p.name) for p in sorted(corpus["folder"].glob("*.txt")))
  assert splits["validation"] == expected > 0


def test_blank_line_documents(tmp_path):
  folder = tmp_path / "t"
  folder.mkdir()
  (folder / "a.txt").write_text("\n\n".join(f"block {i} text" for i in range(60)))
  docs = corpora.text_documents(str(folder), "blank_line")
  assert len(docs) == 60 and docs[0][1] == "block 0 text"


def test_bad_corpora_get_clear_errors(tmp_path, monkeypatch):
  with pytest.raises(DataError, match="matches no files"):
    builders.prepare(f"text:{tmp_path / 'nothing' / '*.txt'}", str(tmp_path))
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "a.txt").write_text("  \n\n ")
  with pytest.raises(DataError, match="no text"):
    builders.prepare(f"text:{empty}", str(tmp_path / "c1"))
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "a.txt").write_bytes(b"fine\n" * 3 + b"\xc3\x28 broken")
  with pytest.raises(DataError, match=r"a.txt is not UTF-8: byte offset 15 \(0xc3\)"):
    builders.prepare(f"text:{bad}", str(tmp_path / "c2"))
  one = tmp_path / "one"
  one.mkdir()
  (one / "only.txt").write_text("a single document")
  with pytest.raises(DataError, match="split of this corpus is empty"):
    builders.prepare(f"text:{one}", str(tmp_path / "c3"))
  assert not list((tmp_path / "c3").rglob("*.array_record*"))  # nothing half-written
  with pytest.raises(DataError, match="unknown corpus"):
    builders.prepare("wikipedia", str(tmp_path))


def test_tfds_dataset_offline_fails_fast(tmp_path, monkeypatch):
  monkeypatch.setenv("LLM_INPUT_TFDS_PROBE_HOST", "offline.invalid")
  start = time.perf_counter()
  with pytest.raises(DataError, match="cannot reach the internet"):
    builders.prepare("tfds:tiny_shakespeare", str(tmp_path))
  assert time.perf_counter() - start < 15


@pytest.mark.parametrize("bad, message", [
    (dict(seq_len=1), "seq_len must be an integer >= 2"),
    (dict(batch_size=6), "not divisible by the 4 data-parallel devices"),
])
def test_bad_pipeline_config(corpus, bad, message):
  with pytest.raises(DataError, match=message):
    pipeline.train_dataset(cfg_for(corpus, **bad), corpus["byte"], data_parallel=4)


def test_packing_loses_and_duplicates_nothing():
  docs = [{"tokens": np.arange(n, dtype=np.int32) + 100 * (i + 1), "nbytes": np.ones(n, np.int32)}
          for i, n in enumerate([5, 1, 12, 7, 3])]
  packed = list(pipeline.PackIterDataset(grain.MapDataset.source(docs), 8))
  stream = np.concatenate([p["tokens"][p["segment_ids"] > 0] for p in packed])
  np.testing.assert_array_equal(stream, np.concatenate([d["tokens"] for d in docs]))
  assert len(packed) == 4  # 28 tokens in runs of 8, the last padded
  first = packed[0]
  np.testing.assert_array_equal(first["segment_ids"], [1, 1, 1, 1, 1, 2, 3, 3])
  np.testing.assert_array_equal(first["positions"], [0, 1, 2, 3, 4, 0, 0, 1])
  second = packed[1]  # document 3 continues: its piece restarts at position 0
  np.testing.assert_array_equal(second["segment_ids"], [1] * 8)
  np.testing.assert_array_equal(second["positions"], np.arange(8))
  last = packed[-1]
  # the last token of document 3, then document 4, then padding
  np.testing.assert_array_equal(last["segment_ids"], [1, 2, 2, 2, 0, 0, 0, 0])
  np.testing.assert_array_equal(last["positions"], [0, 0, 1, 2, 0, 0, 0, 0])
  example = pipeline.to_example(last)
  np.testing.assert_array_equal(example["loss_mask"], [0, 1, 1, 0, 0, 0, 0])  # no padding targets
  example = pipeline.to_example(first)
  np.testing.assert_array_equal(example["loss_mask"], [1, 1, 1, 1, 0, 0, 1])  # no cross-document targets
  np.testing.assert_array_equal(example["targets"][example["loss_mask"] == 1],
                                [101, 102, 103, 104, 301])


def test_epoch_covers_every_training_token_once(corpus):
  cfg = cfg_for(corpus)
  docs = list(pipeline.documents(cfg, "train"))
  tok = corpus["byte"]
  expected = sorted(np.concatenate([pipeline.Tokenize(tok, True, True).map(d)["tokens"] for d in docs]).tolist())
  tokens = pipeline.Tokenize(tok, True, True)
  ds = grain.MapDataset.source(docs).shuffle(seed=3).map(tokens)
  seen = np.concatenate([p["tokens"][p["segment_ids"] > 0] for p in pipeline.PackIterDataset(ds, 17)])
  assert sorted(seen.tolist()) == expected


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_same_seed_same_batches_different_seed_different_order(corpus):
  a = _take(iter(pipeline.train_dataset(cfg_for(corpus, seed=1), corpus["bpe"])), 5)
  b = _take(iter(pipeline.train_dataset(cfg_for(corpus, seed=1), corpus["bpe"])), 5)
  c = _take(iter(pipeline.train_dataset(cfg_for(corpus, seed=2), corpus["bpe"])), 5)
  for x, y in zip(a, b):
    for key in pipeline.FEATURES:
      np.testing.assert_array_equal(x[key], y[key])
  assert any(not np.array_equal(x["inputs"], z["inputs"]) for x, z in zip(a, c))


def test_resume_restores_the_next_batch_exactly(corpus):
  # Enough batches to cross an epoch boundary (about 60 batches per epoch here).
  cfg = cfg_for(corpus, batch_size=2)
  iterator = iter(pipeline.train_dataset(cfg, corpus["bpe"]))
  states, batches = [], []
  for _ in range(150):
    states.append(iterator.get_state())
    batches.append(next(iterator))
  for k in (0, 7, 149):
    fresh = iter(pipeline.train_dataset(cfg, corpus["bpe"]))
    fresh.set_state(states[k])
    for j in range(k, min(k + 3, 150)):
      got = next(fresh)
      for key in pipeline.FEATURES:
        np.testing.assert_array_equal(got[key], batches[j][key])


def test_two_processes_read_disjoint_shares_that_cover_the_data(corpus):
  cfg = cfg_for(corpus, batch_size=2, seq_len=1 << 16)  # long enough that no document is cut
  tok = corpus["byte"]

  def rows(process_index):
    out = set()
    for batch in pipeline.eval_batches(cfg, tok, split="train", process_index=process_index, process_count=2):
      assert batch["inputs"].shape == (1, 1 << 16)  # each process holds half of the global batch
      for row, seg in zip(batch["inputs"], batch["segment_ids"]):
        for s in set(seg.tolist()) - {0}:
          out.add(tok.decode(row[seg == s][1:]))  # strip bos
    return out

  share0, share1 = rows(0), rows(1)
  assert share0 and share1 and not share0 & share1
  everything = {d.rstrip("\n") for d in pipeline.documents(cfg, "train")}
  assert {d.rstrip("\n") for d in share0 | share1} == everything


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_target_bytes_equal_utf8_bytes_of_decoded_targets(corpus, kind):
  tok = corpus[kind]
  cfg = cfg_for(corpus, seq_len=32, batch_size=4)
  prefix = tok.encode("a")  # decoding mid-document: after a fixed prefix, so a leading space is kept
  total = 0
  for batch in pipeline.eval_batches(cfg, tok):
    rows = zip(batch["inputs"], batch["targets"], batch["segment_ids"], batch["loss_mask"], batch["target_bytes"])
    for inputs, targets, segments, mask, nbytes in rows:
      for segment in set(segments[mask == 1].tolist()):
        where = (segments == segment) & (mask == 1)
        kept = targets[where].tolist()
        if inputs[segments == segment][0] == tok.bos_id:  # targets start at the document start
          text = tok.decode(kept)
        else:
          text = tok.decode(prefix + kept)[len(tok.decode(prefix)):]
        assert len(text.encode("utf-8")) == nbytes[where].sum()
        total += nbytes[where].sum()
  assert total > 0


def test_eval_reads_the_split_once_and_pads_the_last_batch(corpus):
  cfg = cfg_for(corpus, seq_len=16, batch_size=4)
  batches = list(pipeline.eval_batches(cfg, corpus["byte"]))
  assert all(b["inputs"].shape == (4, 16) for b in batches)
  docs = list(pipeline.documents(cfg, "validation"))
  tokens = sum(len(d.encode()) + 2 for d in docs)  # bos + bytes + eos
  runs = -(-tokens // 17)  # packed runs of seq_len + 1
  real_rows = sum(int((b["segment_ids"] > 0).any(axis=1).sum()) for b in batches)
  assert real_rows == runs and len(batches) == -(-runs // 4)
  # inputs hold every token except the last slot of each full run
  real = sum(int((b["segment_ids"] > 0).sum()) for b in batches)
  assert real == tokens - tokens // 17
  padded = batches[-1]["loss_mask"].sum(axis=1)
  assert (padded[runs % 4 or 4:] == 0).all()
  again = list(pipeline.eval_batches(cfg, corpus["byte"]))
  for x, y in zip(batches, again, strict=True):
    for key in pipeline.FEATURES:
      np.testing.assert_array_equal(x[key], y[key])


def test_data_cli(corpus, capsys, tmp_path):
  assert cli.main(["data", "prepare", "--corpus", corpus["name"], "--data-dir", corpus["data_dir"]]) == 0
  capsys.readouterr()
  assert cli.main(["data", "stats", "--corpus", corpus["name"], "--data-dir", corpus["data_dir"], "--json"]) == 0
  import json
  stats = json.loads(capsys.readouterr().out)
  assert stats["train"]["documents"] + stats["validation"]["documents"] == 40
  tok_dir = tmp_path / "tok"
  corpus["bpe"].save(tok_dir)
  assert cli.main(["data", "bench", "--corpus", corpus["name"], "--data-dir", corpus["data_dir"],
                   "--tokenizer", str(tok_dir), "--seconds", "0.5", "--json"]) == 0
  assert json.loads(capsys.readouterr().out)["tokens_per_s"] > 0
