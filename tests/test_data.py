"""Corpora and the grain pipeline: offline build, splits, packing, determinism, resume."""

import dataclasses
import os
import pathlib
import re
import shutil
import signal
import time
import types

import numpy as np
import pytest

from llm_input import cli, tokenizers
from llm_input.data import builders, corpora, pipeline
from llm_input.errors import DataError

from helpers import ROOT, make_text_corpus
from helpers import UNICODE_TEXT, trained_on_unicode


@pytest.fixture(scope="module")
def tokenized(corpus):
  """The shared corpus (conftest) as a corpus name and data folder, its texts and two tokenizers."""
  folder, data_dir = corpus
  texts = [p.read_text() for p in sorted(folder.glob("*.txt"))]
  return {"name": f"text:{folder}", "data_dir": str(data_dir), "texts": texts,
          "byte": tokenizers.train("byte", 259, texts),
          "bpe": tokenizers.train("bpe", 300, texts), "folder": folder}


def cfg_for(tokenized, **kw):
  values = dict(corpus=tokenized["name"], data_dir=tokenized["data_dir"], seq_len=16, batch_size=4)
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


def test_default_corpus_holds_out_the_share_of_plays_it_is_asked_for(tmp_path):
  """validation_percent on shakespeare: 12% holds out three plays by key hash (it was ignored
  before, and one play was the whole validation set); the default 5% keeps its folder."""
  builder = builders.prepare("shakespeare", str(tmp_path), validation_percent=12)
  keys = {split: sorted(builder.as_data_source(split)[i]["key"].decode()
                        for i in range(builder.info.splits[split].num_examples))
          for split in ("train", "validation")}
  plays = [key for key, _ in corpora.shakespeare_documents()]
  assert keys["validation"] == sorted(k for k in plays if corpora.is_validation(k, 12)) == [
      "comedies/a-midsummer-night-s-dream", "problems/measure-for-measure", "roman/coriolanus"]
  assert sorted(keys["train"] + keys["validation"]) == sorted(plays)
  assert builder.builder_config.name == "validation_12pct"
  assert pathlib.Path(builder.data_dir).relative_to(tmp_path).parts == (
      "llm_input_shakespeare", "validation_12pct", "1.0.0")
  default = builders.builder_for("shakespeare", str(tmp_path))
  assert default.builder_config is None and not default.is_prepared()
  assert pathlib.Path(default.data_dir) == tmp_path / "llm_input_shakespeare" / "1.0.0"


def test_text_corpus_splits_by_document_hash(tokenized):
  builder = builders.prepare(tokenized["name"], tokenized["data_dir"])
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  assert splits["train"] + splits["validation"] == 40
  expected = sum(corpora.is_validation(p.name) for p in sorted(tokenized["folder"].glob("*.txt")))
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


def test_pipeline_config_reads_every_field_of_the_data_section():
  from llm_input import config as config_lib  # noqa: PLC0415

  values = dict(corpus="text:some/*.txt", seq_len=33, batch_size=6, add_bos=False, add_eos=False,
                doc_split="blank_line", data_dir="/somewhere", validation_corpus="text:held/*.txt",
                validation_percent=12.5, train_split="a", validation_split="b", tokenize_workers=3)
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"),
                        [f"--config.data.{k}={v}" for k, v in values.items()] + ["--config.seed=17"])
  assert pipeline.PipelineConfig.from_config(cfg) == pipeline.PipelineConfig(**values, seed=17)
  cfg.data.data_dir = ""  # "" = the default cache
  assert pipeline.PipelineConfig.from_config(cfg).data_dir is None


def test_a_missing_split_or_a_non_utf8_document_is_named(tokenized, monkeypatch):
  with pytest.raises(DataError, match=r"has no 'test' split \(it has train, validation\)"):
    pipeline.documents(cfg_for(tokenized, train_split="test"), "train")
  with pytest.raises(DataError, match=r"a document is not UTF-8 \(byte offset 3\); re-prepare the corpus "
                                      "from UTF-8 text"):
    pipeline._as_text(b"abc\xff")
  assert pipeline._as_text("é".encode()) == "é" and pipeline._as_text("x") == "x"
  # a corpus whose split exists but is empty (a TFDS dataset can have one; text corpora refuse
  # them when prepared)
  empty = types.SimpleNamespace(info=types.SimpleNamespace(splits={"train": types.SimpleNamespace(num_examples=0)}))
  monkeypatch.setattr(pipeline.PipelineConfig, "builder", lambda self: empty)
  with pytest.raises(DataError, match=f"the train split of {re.escape(tokenized['name'])} is empty"):
    pipeline.documents(cfg_for(tokenized), "train")
  # "train" and "validation" map to the corpus's names; any other name is the corpus's own
  renamed = cfg_for(tokenized, train_split="train[:90%]", validation_split="test")
  assert [renamed.split_name(s) for s in ("train", "validation", "dev")] == ["train[:90%]", "test", "dev"]


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
def test_bad_pipeline_config(tokenized, bad, message):
  with pytest.raises(DataError, match=message):
    pipeline.train_dataset(cfg_for(tokenized, **bad), tokenized["byte"], data_parallel=4)


def _split(lengths):
  """A store split of documents whose ids are 100 * (doc + 1) + position, one byte each."""
  from llm_input.data.store import Split

  ids = np.concatenate([np.arange(n) + 100 * (i + 1) for i, n in enumerate(lengths)])
  docs = np.concatenate([[0], np.cumsum(lengths)])
  return Split(ids=ids, nbytes=np.ones_like(ids), docs=docs)


def test_windows_lose_and_duplicate_nothing():
  split = _split([5, 1, 12, 7, 3])  # 28 tokens: windows of 8 start at 0, 8, 16, 24 (last partial)
  batch = pipeline.windows(split, np.array([0, 8, 16, 24]), 8)
  inputs = np.concatenate([batch["inputs"], batch["targets"][:, -1:]], axis=1)
  stream = inputs[np.concatenate([batch["segment_ids"], batch["segment_ids"][:, -1:]], axis=1) > 0]
  np.testing.assert_array_equal(stream[:27], split.ids[:27])
  np.testing.assert_array_equal(batch["segment_ids"][0], [1, 1, 1, 1, 1, 2, 3])
  np.testing.assert_array_equal(batch["positions"][0], [0, 1, 2, 3, 4, 0, 0])
  # document 3 continues in the second window: its piece restarts at position 0
  np.testing.assert_array_equal(batch["segment_ids"][1], [1] * 7)
  np.testing.assert_array_equal(batch["positions"][1], np.arange(7))
  # the last window: the last token of document 3, document 4 whole, then padding
  np.testing.assert_array_equal(batch["segment_ids"][3], [1, 2, 2, 2, 0, 0, 0])
  np.testing.assert_array_equal(batch["positions"][3], [0, 0, 1, 2, 0, 0, 0])
  np.testing.assert_array_equal(batch["inputs"][3][:4], [406, 500, 501, 502])
  np.testing.assert_array_equal(batch["loss_mask"][3], [0, 1, 1, 0, 0, 0, 0])  # no padding targets
  np.testing.assert_array_equal(batch["loss_mask"][0], [1, 1, 1, 1, 0, 0, 1])  # no cross-document targets
  np.testing.assert_array_equal(batch["targets"][0][batch["loss_mask"][0] == 1], [101, 102, 103, 104, 301])
  assert (batch["target_bytes"] == batch["loss_mask"]).all()
  assert {k: v.dtype for k, v in batch.items()} == {k: np.dtype(np.int32) for k in pipeline.FEATURES}


def test_every_window_of_the_grid_once_per_epoch_in_a_seeded_order():
  split = _split([50, 30, 77, 41])  # 198 tokens: 22 windows of 9
  sampler = pipeline.WindowSampler(split, seq_len=8, batch_size=4, seed=5)
  assert sampler.num_windows == 22
  order = np.concatenate([sampler.window_indices(k) for k in range(11)])  # 44 = two epochs
  assert sorted(order[:22]) == list(range(22)) and sorted(order[22:]) == list(range(22))
  assert not np.array_equal(order[:22], order[22:])  # each epoch has its own order
  again = pipeline.WindowSampler(split, seq_len=8, batch_size=4, seed=5)
  np.testing.assert_array_equal(np.concatenate([again.window_indices(k) for k in range(11)]), order)
  other = pipeline.WindowSampler(split, seq_len=8, batch_size=4, seed=6)
  assert not np.array_equal(np.concatenate([other.window_indices(k) for k in range(6)]), order[:24])


def test_rows_of_a_batch_come_from_across_the_corpus(tmp_path):
  """A few long documents: consecutive packing put a batch's rows side by side in one
  document; windows drawn from the whole grid spread them over documents and positions."""
  folder = tmp_path / "long"
  folder.mkdir()
  rng = np.random.default_rng(0)
  words = ["alpha", "beta", "gamma", "delta", "river", "bank", "sea", "wind"]
  for i in range(4):
    (folder / f"book{i}.txt").write_text(" ".join(rng.choice(words, 6000)) + "\n")
  held_out = tmp_path / "held_out"
  held_out.mkdir()
  (held_out / "essay.txt").write_text(" ".join(rng.choice(words, 500)) + "\n")
  cfg = pipeline.PipelineConfig(corpus=f"text:{folder}", data_dir=str(tmp_path / "cache"), seq_len=64,
                                batch_size=16, validation_corpus=f"text:{held_out}/*.txt", seed=1)
  tok = tokenizers.train("byte", 259, ["x"])
  data = pipeline.open_store(cfg, tok, say=lambda *a: None).split("train")
  docs_in_train = len(data.docs) - 1
  assert docs_in_train == 4  # every book trains; the essay is the validation split
  iterator = iter(pipeline.train_dataset(cfg, tok, say=lambda *a: None))
  spread, distinct = [], []
  for _ in range(20):
    batch = next(iterator)
    first = batch["inputs"][:, 0]
    # where each row starts in the stream: find it by the window grid
    starts = []
    for row in batch["inputs"]:
      hits = [s for s in range(0, data.num_tokens - 65, 65) if np.array_equal(data.ids[s:s + 64], row)]
      starts.append(hits[0])
    starts = np.array(starts)
    distinct.append(len(set(data.doc_index(starts).tolist())))
    spread.append(np.ptp(starts))
    del first
  # Consecutive packing: 16 rows of 65 tokens span ~1,040 tokens of one document (a batch is
  # one document). Here rows span most of the ~17k-token stream and several documents.
  assert np.median(spread) > 0.5 * data.num_tokens
  assert np.mean(distinct) >= min(docs_in_train, 2) and max(distinct) == docs_in_train


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram", "word"])
def test_store_windows_equal_tokenizing_the_text_directly(tokenized, kind):
  texts = tokenized["texts"]
  tok = {"char": lambda: tokenizers.train("char", 200, texts), "byte": lambda: tokenized["byte"],
         "bpe": lambda: tokenized["bpe"], "unigram": lambda: tokenizers.train("unigram", 300, texts),
         "word": lambda: tokenizers.train("word", 200, texts)}[kind]()
  cfg = cfg_for(tokenized, seq_len=32, batch_size=4)
  docs = list(pipeline.documents(cfg, "validation"))
  stream, counts, seg_of = [], [], []
  for d, text in enumerate(docs):
    ids, nbytes = tok.encode_with_byte_counts(text)
    stream += [tok.bos_id, *ids, tok.eos_id]
    counts += [0, *nbytes, 0]
    seg_of += [d] * (len(ids) + 2)
  got_inputs, got_bytes, got_mask = [], [], []
  for batch in pipeline.eval_batches(cfg, tok):
    for row in range(4):
      live = batch["segment_ids"][row] > 0
      got_inputs += batch["inputs"][row][live].tolist()
      got_bytes += batch["target_bytes"][row][live].tolist()
      got_mask += batch["loss_mask"][row][live].tolist()
  # inputs are the stream minus the last token of every window of 33 (the straddling pair)
  kept = [i for i in range(len(stream)) if i % 33 != 32]
  assert got_inputs == [stream[i] for i in kept]
  # every target inside a document carries the UTF-8 bytes its token stands for
  want_bytes = [counts[i + 1] if i + 1 < len(stream) and seg_of[i + 1] == seg_of[i] else 0 for i in kept]
  assert got_bytes == want_bytes
  assert got_mask == [int(b > 0 or (i + 1 < len(stream) and seg_of[i + 1] == seg_of[i])) for i, b in zip(kept, want_bytes)]
  # and the bytes of a document are all counted, except a target cut off by a window edge
  assert sum(got_bytes) == sum(len(d.encode("utf-8")) for d in docs) - sum(
      counts[i + 1] for i in range(len(stream) - 1) if i % 33 == 32)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def test_a_split_needs_at_least_one_batch_of_windows():
  split = _split([20, 16])  # 36 tokens: 4 windows of 9
  assert pipeline.WindowSampler(split, seq_len=8, batch_size=4, seed=0).num_windows == 4
  with pytest.raises(DataError, match=r"36 tokens: 4 windows of seq_len \+ 1 = 9, fewer than "
                                      r"data.batch_size=5; use a smaller seq_len or batch"):
    pipeline.WindowSampler(split, seq_len=8, batch_size=5, seed=0)


def test_global_batch_lays_the_rows_out_by_the_sharding():
  from llm_input.train import sharding  # noqa: PLC0415

  mesh = sharding.make_mesh(dict(data=2, fsdp=2, tensor=2))
  layout = sharding.batch_sharding(mesh)
  local = {k: np.arange(8 * 16, dtype=np.int32).reshape(8, 16) + i for i, k in enumerate(pipeline.FEATURES)}
  arrays = pipeline.global_batch(local, layout)
  assert set(arrays) == set(pipeline.FEATURES)
  for k, array in arrays.items():
    assert array.sharding == layout and array.shape == (8, 16)
    np.testing.assert_array_equal(np.asarray(array), local[k])
    assert {s.data.shape for s in array.addressable_shards} == {(2, 16)}


def test_same_seed_same_batches_different_seed_different_order(tokenized):
  a = _take(iter(pipeline.train_dataset(cfg_for(tokenized, seed=1), tokenized["bpe"])), 5)
  b = _take(iter(pipeline.train_dataset(cfg_for(tokenized, seed=1), tokenized["bpe"])), 5)
  c = _take(iter(pipeline.train_dataset(cfg_for(tokenized, seed=2), tokenized["bpe"])), 5)
  for x, y in zip(a, b):
    for key in pipeline.FEATURES:
      np.testing.assert_array_equal(x[key], y[key])
  assert any(not np.array_equal(x["inputs"], z["inputs"]) for x, z in zip(a, c))


def test_resume_restores_the_next_batch_exactly(tokenized):
  # Enough batches to cross an epoch boundary (about 60 batches per epoch here).
  cfg = cfg_for(tokenized, batch_size=2)
  iterator = iter(pipeline.train_dataset(cfg, tokenized["bpe"]))
  states, batches = [], []
  for _ in range(150):
    states.append(iterator.get_state())
    batches.append(next(iterator))
  for k in (0, 7, 149):
    fresh = iter(pipeline.train_dataset(cfg, tokenized["bpe"]))
    fresh.set_state(states[k])
    for j in range(k, min(k + 3, 150)):
      got = next(fresh)
      for key in pipeline.FEATURES:
        np.testing.assert_array_equal(got[key], batches[j][key])


def test_two_processes_read_their_rows_whose_union_is_the_global_batch(tokenized):
  cfg = cfg_for(tokenized, batch_size=4, seq_len=16)
  tok = tokenized["bpe"]
  whole = iter(pipeline.train_dataset(cfg, tok))
  shares = [iter(pipeline.train_dataset(cfg, tok, process_index=p, process_count=2)) for p in (0, 1)]
  for _ in range(5):
    batch = next(whole)
    parts = [next(s) for s in shares]
    for key in pipeline.FEATURES:
      assert parts[0][key].shape[0] == 2
      np.testing.assert_array_equal(np.concatenate([parts[0][key], parts[1][key]]), batch[key])
  for split in ("train", "validation"):
    one = list(pipeline.eval_batches(cfg, tok, split=split))
    two = [list(pipeline.eval_batches(cfg, tok, split=split, process_index=p, process_count=2)) for p in (0, 1)]
    for b, x, y in zip(one, *two, strict=True):
      np.testing.assert_array_equal(np.concatenate([x["inputs"], y["inputs"]]), b["inputs"])


def test_training_starts_at_batch_zero_and_the_processes_must_divide_the_batch(tokenized, capsys):
  """Bugs: the stream skipping its first batch; a process count that does not divide the
  batch accepted (processes would read overlapping or missing rows); store messages lost."""
  cfg = cfg_for(tokenized, batch_size=3, add_eos=False)  # a store of its own: built here
  said = []
  iterator = iter(pipeline.train_dataset(cfg, tokenized["bpe"], say=said.append))  # one device: 3 is fine
  assert any(line.startswith("token store: train: ") for line in said)
  assert "token store" not in capsys.readouterr().out
  sampler = pipeline.WindowSampler(pipeline.open_store(cfg, tokenized["bpe"]).split("train"), 16, 3, cfg.seed)
  for k in range(2):
    got, want = next(iterator), sampler.batch(k, slice(0, 3))
    for key in pipeline.FEATURES:
      np.testing.assert_array_equal(got[key], want[key])
  with pytest.raises(DataError, match="batch_size=3 is not divisible by the 2 processes"):
    pipeline.train_dataset(cfg, tokenized["bpe"], process_count=2)
  with pytest.raises(DataError, match="batch_size=3 is not divisible by the 2 processes"):
    next(pipeline.eval_batches(cfg, tokenized["bpe"], process_count=2))
  eval_said = []
  assert next(pipeline.eval_batches(cfg_for(tokenized, batch_size=3, add_bos=False), tokenized["bpe"],
                                    say=eval_said.append))["inputs"].shape == (3, 16)
  assert any(line.startswith("token store: validation: ") for line in eval_said)


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_target_bytes_equal_utf8_bytes_of_decoded_targets(tokenized, kind):
  tok = tokenized[kind]
  cfg = cfg_for(tokenized, seq_len=32, batch_size=4)
  total = 0
  for batch in pipeline.eval_batches(cfg, tok):
    rows = zip(batch["inputs"], batch["targets"], batch["segment_ids"], batch["loss_mask"], batch["target_bytes"])
    for inputs, targets, segments, mask, nbytes in rows:
      for segment in set(segments[mask == 1].tolist()):
        where = (segments == segment) & (mask == 1)
        kept = targets[where].tolist()
        if inputs[segments == segment][0] == tok.bos_id:  # targets start at the document start
          text = tok.decode(kept)
        else:  # mid-document: decoded after the token before them (a newline, a word, ...)
          # and after "a", so that token's own leading space is kept
          before = tok.encode("a") + [int(inputs[where][0])]
          text = tok.decode(before + kept)[len(tok.decode(before)):]
        assert len(text.encode("utf-8")) == nbytes[where].sum()
        total += nbytes[where].sum()
  assert total > 0


def test_eval_reads_the_split_once_and_pads_the_last_batch(tokenized):
  cfg = cfg_for(tokenized, seq_len=16, batch_size=4)
  batches = list(pipeline.eval_batches(cfg, tokenized["byte"]))
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
  again = list(pipeline.eval_batches(cfg, tokenized["byte"]))
  for x, y in zip(batches, again, strict=True):
    for key in pipeline.FEATURES:
      np.testing.assert_array_equal(x[key], y[key])


def test_data_cli(tokenized, capsys, tmp_path):
  assert cli.main(["data", "prepare", "--corpus", tokenized["name"], "--data-dir", tokenized["data_dir"]]) == 0
  capsys.readouterr()
  assert cli.main(["data", "stats", "--corpus", tokenized["name"], "--data-dir", tokenized["data_dir"], "--json"]) == 0
  import json
  stats = json.loads(capsys.readouterr().out)
  assert stats["train"]["documents"] + stats["validation"]["documents"] == 40
  tok_dir = tmp_path / "tok"
  tokenized["bpe"].save(tok_dir)
  assert cli.main(["data", "tokenize", "--corpus", tokenized["name"], "--data-dir", tokenized["data_dir"],
                   "--tokenizer", str(tok_dir)]) == 0
  assert "token store:" in capsys.readouterr().out
  assert cli.main(["data", "bench", "--corpus", tokenized["name"], "--data-dir", tokenized["data_dir"],
                   "--tokenizer", str(tok_dir), "--seconds", "0.5", "--json"]) == 0
  result = json.loads(capsys.readouterr().out)
  assert result["read"]["tokens_per_s"] > 0
  assert [r["workers"] for r in result["tokenize"]][0] == 1 and result["tokenize"][0]["mb_per_s"] > 0


def test_store_dtype_follows_the_vocabulary():
  from llm_input.data.store import ids_dtype

  assert [ids_dtype(v) for v in (256, 257, 65536, 65537)] == [np.uint8, np.uint16, np.uint16, np.uint32]


def test_store_with_a_wrong_fingerprint_is_rebuilt(tokenized, capsys):
  import json

  cfg = cfg_for(tokenized, seq_len=16, batch_size=4)
  tok = tokenized["byte"]
  store = pipeline.open_store(cfg, tok, say=print)
  first = store.split("train").ids.tolist()
  meta = json.loads((store.folder / "meta.json").read_text())
  meta["fingerprint"] = "0" * 24
  (store.folder / "meta.json").write_text(json.dumps(meta))
  capsys.readouterr()
  again = pipeline.open_store(cfg, tok, say=print)
  assert "is not usable (its fingerprint 000000000000 is not this tokenizer" in capsys.readouterr().out
  assert again.split("train").ids.tolist() == first
  # another tokenizer gets a store of its own, never this one
  other = pipeline.open_store(cfg, tokenized["bpe"], say=print)
  assert other.folder != again.folder
  shutil.rmtree(other.folder)  # (other tests may have built it already) build it again, saying why
  capsys.readouterr()
  pipeline.open_store(cfg, tokenized["bpe"], say=print)
  assert re.search(r"the \d+ other store\(s\) here are for other tokenizers", capsys.readouterr().out)


def test_the_tokenizer_fingerprint_is_its_one_identity_and_the_store_reads_its_saved_copy(
    tokenized, tmp_path, monkeypatch):
  """`Tokenizer.fingerprint()` is the hash of the files `save` writes: equal for the saved
  object, a copy loaded back and a retrained twin; run.json and the store's meta.json record
  it; building a store for a tokenizer already saved uses that copy (no second save; its
  workers load it when the text needs a pool)."""
  import json

  from llm_input.fileio import directory_fingerprint
  from llm_input.tokenizers.base import Tokenizer

  tok = tokenizers.train("bpe", 300, tokenized["texts"])
  folder = tok.save(tmp_path / "tok")
  assert tok.fingerprint() == directory_fingerprint(folder)
  assert tokenizers.load(folder).fingerprint() == tok.fingerprint()
  assert tokenizers.train("bpe", 300, tokenized["texts"]).fingerprint() == tok.fingerprint()
  assert tokenizers.train("bpe", 301, tokenized["texts"]).fingerprint() != tok.fingerprint()
  assert tok.saved_folder() == folder
  monkeypatch.setattr(Tokenizer, "save", lambda self, f: pytest.fail("the store saved the tokenizer again"))
  cfg = cfg_for(tokenized, seq_len=16, batch_size=4, tokenize_workers=2)
  store = pipeline.open_store(dataclasses.replace(cfg, data_dir=str(tmp_path / "cache")), tok,
                              say=lambda *a: None)
  assert json.loads((store.folder / "meta.json").read_text())["tokenizer_sha256"] == tok.fingerprint()
  (folder / "tokenizer.json").write_text("{}")  # changed on disk: no longer the saved copy
  assert tok.saved_folder() is None


def test_a_worker_pool_tokenizes_like_one_process_and_a_small_text_starts_none(tokenized, tmp_path, monkeypatch):
  """Text of two or more 64 KiB shards goes to a pool of processes (which load the saved
  tokenizer); their ids and byte counts equal one process's. Text of one shard is encoded in
  the calling process: starting the pool would take longer than encoding it."""
  import concurrent.futures

  from llm_input.data import store as store_lib

  tok = tokenized["bpe"]
  folder = tok.save(tmp_path / "tok")
  texts = [f"{i} {text}" for i in range(8) for text in tokenized["texts"]]  # ~180 KB: 3 shards
  assert sum(len(t) for t in texts) > 2 * (1 << 16)
  started = []
  real_pool = concurrent.futures.ProcessPoolExecutor
  monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor",
                      lambda *a, **k: started.append(a) or real_pool(*a, **k))
  by_pool = store_lib.tokenize_documents(tok, folder, texts, workers=2, progress=False)
  assert len(started) == 1
  alone = store_lib.tokenize_documents(tok, folder, texts, workers=1, progress=False)
  assert len(by_pool) == len(alone) == len(texts)
  for (ids_a, bytes_a), (ids_b, bytes_b) in zip(by_pool, alone):
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(bytes_a, bytes_b)
  small = store_lib.tokenize_documents(tok, folder, tokenized["texts"], workers=2, progress=False)
  assert len(started) == 1  # no second pool for ~22 KB
  one = store_lib.tokenize_documents(tok, folder, tokenized["texts"], workers=1, progress=False)
  assert [ids.tolist() for ids, _ in small] == [ids.tolist() for ids, _ in one]


@pytest.mark.parametrize("damage, reason", [
    ("truncated", r"train.ids.npy is [\d,]+ bytes, not the [\d,]+ written \(truncated\?\)"),
    ("garbled", r"train.ids.npy does not match its checksum"),
    ("outside the vocabulary", r"train.ids.npy holds id 65,535, outside the vocabulary of 259"),
    ("no checksums", r"it was written before stores recorded their files' sizes and checksums"),
])
def test_a_damaged_store_is_rebuilt_saying_why(tokenized, capsys, damage, reason):
  import json

  from llm_input.data import store as store_lib

  cfg = cfg_for(tokenized, seq_len=16, batch_size=4)
  tok = tokenized["byte"]
  store = pipeline.open_store(cfg, tok, say=print)
  first = store.split("train").ids.tolist()
  ids_file, meta_file = store.folder / "train.ids.npy", store.folder / "meta.json"
  meta = json.loads(meta_file.read_text())
  if damage == "truncated":
    ids_file.write_bytes(ids_file.read_bytes()[:-100])
  elif damage == "garbled":
    data = bytearray(ids_file.read_bytes())
    data[-3] ^= 0x01
    ids_file.write_bytes(bytes(data))
  elif damage == "outside the vocabulary":  # its checksum recomputed, as a buggy writer would
    ids = np.load(ids_file)
    ids[5] = 65535
    np.save(ids_file, ids)
    meta["files"]["train.ids.npy"] = store_lib._file_record(ids_file)
  else:
    del meta["files"]
  meta_file.write_text(json.dumps(meta))
  capsys.readouterr()
  again = pipeline.open_store(cfg, tok, say=print)
  out = capsys.readouterr().out
  assert re.search(rf"token store .* is not usable \({reason}.*\); rebuilding it", out), out
  assert again.split("train").ids.tolist() == first


def test_interrupted_tokenization_leaves_no_usable_half_store(tokenized, tmp_path):
  import subprocess
  import sys
  import textwrap

  big = tmp_path / "big"
  big.mkdir()
  for i in range(12):
    (big / f"{i}.txt").write_text(("the bank by the river " * 40000) + str(i))
  tok_dir = tmp_path / "tok"
  tokenized["bpe"].save(tok_dir)
  data_dir = tmp_path / "cache"
  script = textwrap.dedent(f"""
      from llm_input import tokenizers
      from llm_input.data import pipeline
      cfg = pipeline.PipelineConfig(corpus="text:{big}", data_dir="{data_dir}", validation_percent=40.0,
                                    tokenize_workers=2)
      pipeline.open_store(cfg, tokenizers.load("{tok_dir}"))
  """)
  proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True)
  deadline = time.time() + 120
  stores = None
  while time.time() < deadline:
    stores = list(data_dir.glob("llm_input_text/*/*/token_store"))
    if stores and list(stores[0].glob(".tmp-*/tokenizer")):
      break
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)  # the builder and its worker pool
  proc.wait()
  assert stores, "the build never started"
  assert not [p for p in stores[0].iterdir() if not p.name.startswith(".")]  # nothing looks complete
  cfg = pipeline.PipelineConfig(corpus=f"text:{big}", data_dir=str(data_dir), validation_percent=40.0)
  store = pipeline.open_store(cfg, tokenized["bpe"], say=lambda *a: None)
  assert store.meta["splits"]["train"]["tokens"] > 0
  assert not list(stores[0].glob(".tmp-*"))  # the dead build's leftovers are gone


def test_validation_glob_that_matches_nothing_or_overlaps_is_refused(tokenized, tmp_path):
  folder = tokenized["folder"]
  with pytest.raises(DataError, match="matches no files"):
    pipeline.PipelineConfig(corpus=f"text:{folder}", data_dir=str(tmp_path),
                            validation_corpus=f"text:{tmp_path}/none/*.txt").builder()
  with pytest.raises(DataError, match="overlaps the training files"):
    pipeline.PipelineConfig(corpus=f"text:{folder}", data_dir=str(tmp_path),
                            validation_corpus=f"text:{folder}/doc0*.txt").builder()
  assert not list(tmp_path.iterdir())  # refused before any work


def test_prepare_leaves_nothing_in_tmpdir_or_the_data_folder_failed_or_not(tmp_path):
  import os
  import subprocess
  import sys

  good = make_text_corpus(tmp_path / "good")
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "a.txt").write_text("fine\n")
  (bad / "b.txt").write_bytes(b"\xff\xfe not utf-8\n")
  tmpdir, data_dir = tmp_path / "tmp", tmp_path / "data"
  tmpdir.mkdir()
  codes = []
  for corpus in (f"text:{good}/*.txt", f"text:{bad}/*.txt"):
    proc = subprocess.run([sys.executable, "-m", "llm_input.cli", "data", "prepare", "--corpus", corpus,
                           "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(tmpdir)})
    codes.append((proc.returncode, proc.stderr[-300:]))
  assert [c for c, _ in codes] == [0, 2], codes
  assert list(tmpdir.iterdir()) == []  # TFDS's tmp*tfds folders went with our own temporary folder
  builds = list((data_dir / "llm_input_text").iterdir())
  assert len(builds) == 1 and any(builds[0].iterdir())  # the good corpus only, no empty files_<hash>


def test_processes_preparing_one_new_corpus_at_once_all_get_it(tmp_path):
  """Two sweep shards started side by side both prepare a corpus not prepared yet: one must
  build it and the other wait and reuse it (was: TFDS's rename of its finished build failed in
  the second with FileExistsError, and that shard died)."""
  import subprocess
  import sys

  corpus = make_text_corpus(tmp_path / "texts", files=400)
  command = [sys.executable, "-m", "llm_input.cli", "data", "prepare", "--corpus", f"text:{corpus}",
             "--data-dir", str(tmp_path / "data")]
  procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
  results = [(p.wait(timeout=300), p.stderr.read()[-500:]) for p in procs]
  assert [code for code, _ in results] == [0, 0, 0, 0], results
  builds = list((tmp_path / "data" / "llm_input_text").iterdir())
  assert len(builds) == 1 and not [p for p in builds[0].rglob("incomplete*")]
  assert builders.prepare(f"text:{corpus}", str(tmp_path / "data")).info.splits["train"].num_examples > 0


# -- planted-bug tests (each fails with the bug its docstring names; docs/testing.md) ----

@pytest.mark.planted
@pytest.mark.parametrize("kind", ["char", "bpe", "word"])
def test_bits_per_byte_denominator_on_non_ascii_corpus(tmp_path, kind):
  """Through the token store and the windows: the target bytes of each document's targets add
  up to its UTF-8 length (minus the first token, which is never a target, and the pairs cut by
  window edges, counted here from the store's own boundaries)."""
  from llm_input.data import pipeline

  folder = tmp_path / "texts"
  folder.mkdir()
  for i in range(24):
    (folder / f"{i:02d}.txt").write_text(UNICODE_TEXT * (1 + i % 3))
  tok = trained_on_unicode(kind)
  cfg = pipeline.PipelineConfig(corpus=f"text:{folder}", data_dir=str(tmp_path / "cache"), seq_len=40,
                                batch_size=4, validation_percent=20.0)
  split = pipeline.open_store(cfg, tok, say=lambda *a: None).split("validation")
  docs = list(pipeline.documents(cfg, "validation"))
  total = sum(int(b["target_bytes"].sum()) for b in pipeline.eval_batches(cfg, tok))
  # tokens at window starts (every 41st) are never targets: their bytes are not counted
  window_starts = np.arange(0, split.num_tokens, 41)
  lost = int(np.asarray(split.nbytes)[window_starts].sum())
  assert total == sum(len(d.encode("utf-8")) for d in docs) - lost
  assert lost < total / 10
