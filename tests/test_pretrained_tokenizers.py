"""Tokenizers made elsewhere: each format written by its own library, imported, and held to that
library's encode, an exact decode and byte counts that sum to the UTF-8 length."""

import json
import pathlib

import pytest
import sentencepiece as spm
import tiktoken
import tiktoken.load
import tokenizers as hf
from tokenizers import pre_tokenizers

from llm_input import cli
from llm_input import tokenizers as tok_lib
from llm_input.errors import TokenizerError
from llm_input.tokenizers import pretrained, stats

from test_tokenizers import CORPUS

HARD = [
    "  leading spaces and trailing  ",
    "Windows\r\nline\r\nends\r\n",
    "\ttabs\tand\t\ttwo",
    "emoji 😀🚀 and 👩‍👩‍👧",
    "Café naïve résumé Ångström",
    "CJK 日本語の文章 and 中文, 한국어",
    "The bank by the river.\nHello world!\n\n\nthree newlines",
    "",
    "<|endoftext|> as plain text",
]
TEXT = "\n".join(HARD)


def _byte_level_bpe():
  """A byte-level BPE trained by `tokenizers`, as GPT-2's is: <|endoftext|> after the ranks."""
  tokenizer = hf.Tokenizer(hf.models.BPE())
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = hf.decoders.ByteLevel()
  trainer = hf.trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                   show_progress=False)
  tokenizer.train_from_iterator([CORPUS], trainer)
  tokenizer.add_special_tokens([hf.AddedToken("<|endoftext|>", special=True)])
  return tokenizer


def _wordpiece():
  """A BERT-style WordPiece (lower-cased, accents stripped): lossy, so its bytes come from offsets."""
  tokenizer = hf.Tokenizer(hf.models.WordPiece(unk_token="[UNK]"))
  tokenizer.normalizer = hf.normalizers.BertNormalizer(lowercase=True)
  tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tokenizer.decoder = hf.decoders.WordPiece()
  trainer = hf.trainers.WordPieceTrainer(vocab_size=300, show_progress=False,
                                         special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
  tokenizer.train_from_iterator([CORPUS], trainer)
  return tokenizer


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
  """Every format, written by the library that defines it."""
  root = tmp_path_factory.mktemp("foreign")
  bpe = _byte_level_bpe()
  bpe.save(str(root / "tokenizer.json"))
  wordpiece = _wordpiece()
  (root / "bert").mkdir()
  wordpiece.save(str(root / "bert" / "tokenizer.json"))
  (root / "gpt2_pair").mkdir()
  bpe.model.save(str(root / "gpt2_pair"))  # vocab.json + merges.txt
  byte_of = pretrained._byte_level_alphabet()
  ranks = {bytes(byte_of[c] for c in piece): i for piece, i in bpe.get_vocab(with_added_tokens=False).items()}
  tiktoken.load.dump_tiktoken_bpe(ranks, str(root / "ranks.tiktoken"))
  encoding = tiktoken.Encoding("fixture", pat_str=pretrained.known_tiktoken_encoding("gpt2")[0],
                               mergeable_ranks=ranks, special_tokens={"<|endoftext|>": len(ranks)})
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(CORPUS.split("\n")), model_prefix=str(root / "llama"), model_type="bpe",
      vocab_size=400, byte_fallback=True, character_coverage=1.0, minloglevel=2,
      normalization_rule_name="identity", remove_extra_whitespaces=False,  # as Llama 2's
      split_digits=True, allow_whitespace_only_pieces=True)  # and its ids: unk 0, bos 1, eos 2
  return {
      "hf": (root / "tokenizer.json", {}, lambda t: bpe.encode(t, add_special_tokens=False).ids),
      "wordpiece": (root / "bert", {}, lambda t: wordpiece.encode(t, add_special_tokens=False).ids),
      "hf_folder": (root, {}, lambda t: bpe.encode(t, add_special_tokens=False).ids),
      "gpt2_pair": (root / "gpt2_pair", {}, lambda t: bpe.encode(t, add_special_tokens=False).ids),
      "tiktoken": (root / "ranks.tiktoken", {"pattern": "gpt2"}, encoding.encode_ordinary),
      "sentencepiece": (root / "llama.model", {},
                        spm.SentencePieceProcessor(model_file=str(root / "llama.model")).encode),
  }


@pytest.fixture(scope="module")
def imported(sources, tmp_path_factory):
  root = tmp_path_factory.mktemp("imported")
  return {name: tok_lib.load(tok_lib.import_tokenizer(path, **kw).save(root / name))
          for name, (path, kw, _) in sources.items()}


@pytest.mark.parametrize("name", ["hf", "hf_folder", "gpt2_pair", "tiktoken", "sentencepiece", "wordpiece"])
def test_imported_ids_are_the_librarys_and_round_trip_exactly(sources, imported, name):
  tokenizer, library_encode = imported[name], sources[name][2]
  for text in HARD + [TEXT]:
    ids = tokenizer.encode(text)
    assert ids == library_encode(text), (name, text)
    if name != "wordpiece":  # lower-cased and re-spaced by design
      assert tokenizer.decode(ids) == text, (name, text)
    counted, counts = tokenizer.encode_with_byte_counts(text)
    assert counted == ids and sum(counts) == len(text.encode("utf-8")), (name, text)
    assert all(c >= 0 for c in counts)
  assert tokenizer.encode_batch(HARD) == [tokenizer.encode(t) for t in HARD]


def test_byte_level_tokens_count_their_raw_bytes_not_their_decoded_text(imported):
  # "🦀" (4 bytes) never occurs in training, so a byte-level BPE cuts it inside the character;
  # each piece decoded alone is U+FFFD (3 bytes), which would count more bytes than the text has.
  byte_of = pretrained._byte_level_alphabet()
  for name in ("hf", "tiktoken"):
    tokenizer = imported[name]
    ids, counts = tokenizer.encode_with_byte_counts("🦀")
    raw = [bytes(byte_of[c] for c in tokenizer.library.id_to_token(i)) if name == "hf"
           else tokenizer.library.decode_single_token_bytes(i) for i in ids]
    assert len(ids) >= 2 and counts == [len(r) for r in raw] and sum(counts) == 4, name
    assert sum(len(tokenizer.decode([i]).encode("utf-8")) for i in ids) > 4


def test_the_sources_own_special_ids(imported):
  for name in ("hf", "gpt2_pair", "tiktoken"):  # GPT-2's convention: <|endoftext|> only
    tokenizer = imported[name]
    assert tokenizer.vocab_size == 421
    assert tokenizer.bos_id == tokenizer.eos_id == 420 and tokenizer.pad_id is None
    assert tokenizer.special_ids == {"bos": 420, "eos": 420}
    assert tokenizer.special_token_ids == (420,)
  bert = imported["wordpiece"]  # [CLS] opens, [SEP] closes, as BERT uses them
  assert (bert.pad_id, bert.unk_id, bert.bos_id, bert.eos_id) == (0, 1, 2, 3)
  llama = imported["sentencepiece"]  # Llama 2's: unk 0, bos 1, eos 2, no pad
  assert (llama.unk_id, llama.bos_id, llama.eos_id, llama.pad_id) == (0, 1, 2, None)
  assert llama.special_token_ids == (0, 1, 2)


def test_offsets_give_every_byte_to_one_token(imported):
  # WordPiece drops whitespace and lower-cases: each token takes the bytes from the previous
  # token's end to its own, the skipped whitespace going to the next token.
  bert = imported["wordpiece"]
  ids, counts = bert.encode_with_byte_counts("  The Café  ")
  assert [bert.id_to_piece(i) for i in ids][:1] == ["the"]
  assert counts[0] == len("  The") and sum(counts) == len("  The Café  ".encode("utf-8"))
  assert counts[-1] >= len("  ")  # the trailing spaces belong to the last token


def test_a_words_pieces_are_the_ones_it_has_after_a_space(imported):
  for name in ("hf", "tiktoken"):  # byte-level: the space is part of the word's first token
    tokenizer = imported[name]
    assert tokenizer.word_ids("bank") == tokenizer.encode(" bank")
    assert tokenizer.id_to_piece(tokenizer.word_ids("bank")[0]).startswith(("Ġ", " "))
  bert = imported["wordpiece"]
  assert bert.word_ids("bank") == bert.encode("bank")


def test_roles_come_from_tokenizer_config_or_flags(sources, tmp_path):
  path = sources["hf"][0]
  folder = tmp_path / "with_config"
  folder.mkdir()
  spec = json.loads(path.read_text())
  spec["added_tokens"].append({**spec["added_tokens"][0], "id": 421, "content": "<|begin|>"})
  (folder / "tokenizer.json").write_text(json.dumps(spec))
  (folder / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<|begin|>",
                                                           "eos_token": {"content": "<|endoftext|>"}}))
  tokenizer = tok_lib.import_tokenizer(folder)
  assert (tokenizer.bos_id, tokenizer.eos_id) == (421, 420)
  flagged = tok_lib.import_tokenizer(folder / "tokenizer.json", roles={"bos": "<|endoftext|>"})
  assert flagged.bos_id == 420
  with pytest.raises(TokenizerError, match="not a special token.*<\\|begin\\|>, <\\|endoftext\\|>"):
    tok_lib.import_tokenizer(folder / "tokenizer.json", roles={"eos": "</s>"})


def test_a_training_run_and_its_token_store_work_with_an_imported_tokenizer(imported, tmp_path, capsys):
  folder = imported["tiktoken"].save(tmp_path / "tok")
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  for i in range(6):
    (corpus / f"doc{i}.txt").write_text(CORPUS[i * 400:(i + 1) * 400 + 2000] + "\n" + TEXT)
  args = ["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path / "run"),
          f"--config.tokenizer.path={folder}", f"--config.data.corpus=text:{corpus}/*.txt",
          f"--config.data.data_dir={tmp_path / 'data'}", "--config.data.validation_percent=40",
          "--config.train.steps=3", "--config.train.eval_every=3", "--config.train.log_every=1",
          "--config.data.seq_len=32", "--config.data.batch_size=8", "--config.model.d_model=32",
          "--config.model.num_layers=1", "--config.model.num_heads=2", "--config.model.max_len=32",
          "--config.sample.max_new_tokens=4", "--config.checkpoint.every_steps=3",
          "--config.logging.progress_bar=False", "--config.logging.tensorboard=False"]
  assert cli.main(args) == 0
  out = capsys.readouterr().out
  assert f"tokenizer: tiktoken (421 ids) from {folder}" in out and "trained" not in out
  assert "final validation" in out and "bits per byte" in out
  run_tokenizer = tok_lib.load(tmp_path / "run" / "tokenizer")
  assert run_tokenizer.kind == "tiktoken" and run_tokenizer.encode(TEXT) == imported["tiktoken"].encode(TEXT)
  assert json.loads((tmp_path / "run" / "config.json").read_text())["tokenizer"]["path"] == str(folder)
  stores = [json.loads(p.read_text()) for p in (tmp_path / "data").rglob("token_store/*/meta.json")]
  assert stores and all(m["tokenizer_kind"] == "tiktoken" and m["vocab_size"] == 421 for m in stores), stores
  assert cli.main(["report", "--run", str(tmp_path / "run")]) == 0  # the analysis reads it too
  report = json.loads((tmp_path / "run" / "report.json").read_text())
  row = next(r for r in report["tokenization"] if r["kind"] == "tiktoken" and r["sentence"] == "Hello world")
  assert row["ids"] == imported["tiktoken"].encode("Hello world")
  assert (tmp_path / "run" / "report.html").stat().st_size > 0


def test_an_imported_tokenizer_larger_than_the_model_is_refused_before_training(imported, tmp_path, capsys):
  folder = imported["hf"].save(tmp_path / "tok")
  code = cli.main(["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path / "run"),
                   f"--config.tokenizer.path={folder}", "--config.model.vocab_size=300"])
  assert code == 2
  err = capsys.readouterr().err
  assert "model.vocab_size=300" in err and "421" in err
  assert not (tmp_path / "run").exists()


def test_bad_input_names_what_was_looked_for(sources, tmp_path, capsys):
  (tmp_path / "notes.txt").write_text("hello")
  assert cli.main(["tokenizer", "import", "--from", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "o")]) == 2
  err = capsys.readouterr().err
  for name in ("tokenizer.json", "vocab.json + merges.txt", "tiktoken", "SentencePiece"):
    assert name in err
  assert cli.main(["tokenizer", "import", "--from", str(sources["tiktoken"][0]), "--out", str(tmp_path / "o")]) == 2
  assert "pass --pattern gpt2|cl100k|o200k|REGEX" in capsys.readouterr().err
  spec = json.loads(sources["hf"][0].read_text())
  spec["model"]["type"] = "Mystery"
  (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
  assert cli.main(["tokenizer", "import", "--from", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
  assert "model type 'Mystery' is not supported" in capsys.readouterr().err
  (tmp_path / "bad.tiktoken").write_text("not base64 at all\n")
  assert cli.main(["tokenizer", "import", "--from", str(tmp_path / "bad.tiktoken"), "--pattern", "gpt2",
                   "--out", str(tmp_path / "o")]) == 2
  assert "line 1 of the tiktoken file" in capsys.readouterr().err
  assert not (tmp_path / "o").exists()


def test_cli_import_then_show(sources, tmp_path, capsys):
  assert cli.main(["tokenizer", "import", "--from", str(sources["gpt2_pair"][0]), "--out", str(tmp_path / "g")]) == 0
  assert "imported hf tokenizer: vocab_size 421 (bos 420 '<|endoftext|>', eos 420" in capsys.readouterr().out
  assert cli.main(["tokenizer", "show", "--tokenizer", str(tmp_path / "g"), "The bank"]) == 0
  assert "'The' 'Ġbank'" in capsys.readouterr().out


def test_compare_reports_each_tokenizer_on_each_text(imported, tmp_path, capsys):
  (tmp_path / "a.txt").write_text(TEXT)
  (tmp_path / "b.txt").write_text(CORPUS[:3000])
  folders = [str(imported[n].save(tmp_path / n)) for n in ("tiktoken", "sentencepiece")]
  args = ["tokenizer", "compare", "--tokenizer", folders[0], "--tokenizer", folders[1],
          "--input", str(tmp_path / "a.txt"), "--input", str(tmp_path / "b.txt")]
  assert cli.main(args + ["--json", "--plot", str(tmp_path / "cmp.png")]) == 0
  rows = json.loads(capsys.readouterr().out)
  assert [(r["kind"], r["text"]) for r in rows] == [
      (k, str(tmp_path / t)) for k in ("tiktoken", "sentencepiece") for t in ("a.txt", "b.txt")]
  for row in rows:
    expected = stats.compute(imported[row["kind"]], [pathlib.Path(row["text"]).read_bytes().decode("utf-8")]).to_dict()
    del expected["encode_mb_per_s"], row["stats"]["encode_mb_per_s"]
    assert row["stats"] == expected
    assert row["stats"]["round_trip_error_at"] is None
  assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert cli.main(args) == 0
  table = capsys.readouterr().out
  assert table.count(f"| {folders[0]} | tiktoken | 421 |") == 2 and "Rényi" in table
