"""Tokenizers: round trips, determinism, unknowns, statistics by hand, and every bad input."""

import json

import pytest

from llm_input import cli, tokenizers
from llm_input.tokenizers import stats
from llm_input.errors import TokenizerError

ENGLISH = """The bank by the river was quiet in the morning.
She walked to the bank to deposit her money, and the river ran on.
Hello world! Hello again, world. hello, hello.
A king and a queen; a cat and a dog. The cat sat on the mat.
Numbers like 1234 and 56 appear in text too: 7 days, 24 hours.
Language models read tokens, not words: tokens become vectors.
"""
MULTILINGUAL = "Café naïve résumé — emoji 😀🚀 and CJK 日本語の文章 and 中文.\tTabbed.\n"
CORPUS = (ENGLISH * 30) + (MULTILINGUAL * 5)
ROUND_TRIP = [
    "The bank by the river",
    "Hello world!\nA second line.",
    "Café naïve — 😀 日本語",
    "",
    "   ",
    "two  spaces\tand a tab\n\n\nthree newlines",
    "Helo wrold",
]
SUBWORD_VOCAB = 340


def train(kind, vocab_size=None, texts=(CORPUS,), **kw):
  size = vocab_size or {"char": 200, "byte": 259, "word": 200}.get(kind, SUBWORD_VOCAB)
  return tokenizers.train(kind, size, list(texts), tokenizers.TokenizerOptions(**kw))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """Every kind, trained once, saved and loaded back (so tests exercise the folder format)."""
  out = {}
  root = tmp_path_factory.mktemp("tok")
  for kind in tokenizers.KINDS:
    folder = train(kind).save(root / kind)
    out[kind] = tokenizers.load(folder)
  return out


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram"])
@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_is_exact(trained, kind, text):
  tokenizer = trained[kind]  # char: every character of these texts occurs in CORPUS
  assert tokenizer.decode(tokenizer.encode(text)) == text


def test_word_decoding_is_lossy_but_keeps_known_words(trained):
  word = trained["word"]
  assert word.decode(word.encode("The bank by the river.")) == "The bank by the river."
  assert word.decode(word.encode("Hello   world")) == "Hello world"  # space runs collapse
  assert word.encode("") == []
  assert word.encode("   ") == []


def test_hello_is_five_tokens_for_char_and_byte(trained):
  assert len(trained["char"].encode("Hello")) == 5
  assert len(trained["byte"].encode("Hello")) == 5
  assert trained["byte"].encode("Hello") == [b + 3 for b in b"Hello"]


def test_unknown_characters_and_words(trained):
  char, word = trained["char"], trained["word"]
  ids = char.encode("Hello Ω")  # Ω never appears in the corpus
  assert ids[-1] == char.unk_id and char.unk_id not in ids[:-1]
  typo = word.encode("Helo wrold")
  assert typo == [word.unk_id, word.unk_id]
  known = word.encode("Hello world")
  assert word.unk_id not in known
  assert word.decode(typo) == "<unk> <unk>"
  # what became <unk>, read back from the text (the note `sample` prints for a prompt)
  assert char.unknown_parts("Hello Ω and ΩΩ") == ["Ω", "Ω", "Ω"]
  assert word.unknown_parts("Hello wrold, Helo world") == ["wrold", "Helo"]
  assert word.unknown_parts("Hello world") == [] and trained["byte"].unknown_parts("Ω") == []


def test_byte_never_produces_unknowns(trained):
  byte = trained["byte"]
  assert byte.unk_id is None
  text = "\x00\x7f\u00ff\U0010ffff 😀 ǅ"
  ids = byte.encode(text)
  assert all(3 <= i < 259 for i in ids)
  assert byte.decode(ids) == text


def test_char_cap_drops_rarest(tmp_path):
  tokenizer = tokenizers.train("char", 4 + 3, ["aaaa bbb cc d"])
  assert tokenizer.chars == ["a", " ", "b"]  # 4 a's, 3 spaces, 3 b's (tie broken by code point)
  assert tokenizer.encode("abcd") == [4, 6, 3, 3]


def test_subword_without_byte_fallback_uses_unk(trained):
  tok = train("bpe", byte_fallback=False, vocab_size=200)
  ids = tok.encode("Ω")
  assert tok.unk_id in ids


@pytest.mark.parametrize("kind", tokenizers.KINDS)
def test_training_is_deterministic(tmp_path, kind):
  a = train(kind).save(tmp_path / "a")
  # byte has nothing to learn: it must come out the same from any text at all
  b = (train(kind, texts=["entirely other text, ü 東"]) if kind == "byte" else train(kind)).save(tmp_path / "b")
  files_a = sorted(p.name for p in a.iterdir())
  assert files_a == sorted(p.name for p in b.iterdir())
  for name in files_a:
    assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_a_word_that_starts_a_line_has_the_pieces_it_has_after_a_space(trained, kind):
  # SentencePiece trains on lines, each with the "▁" prefix; encoding a document whole gave a
  # line's first word no "▁" ("THESEUS:\nNow" -> "\n", "N", "ow"), so every subword figure
  # counted 6-9% extra tokens.
  tokenizer = trained[kind]
  for word in ("bank", "Hello", "river", "The", "tokens"):
    after_space = tokenizer.encode("x " + word)[len(tokenizer.encode("x")):]
    assert tokenizer.id_to_piece(after_space[0]).startswith("\u2581"), word
    assert tokenizer.encode("x\n" + word)[len(tokenizer.encode("x")) + 1:] == after_space, word
    assert tokenizer.encode(word) == after_space, word  # a document's first word, too
  lines = CORPUS.split("\n")
  line_by_line = sum(len(tokenizer.encode(line)) for line in lines) + len(lines) - 1
  assert len(tokenizer.encode(CORPUS)) <= line_by_line
  ids, counts = tokenizer.encode_with_byte_counts(CORPUS)
  assert tokenizer.decode(ids) == CORPUS and sum(counts) == len(CORPUS.encode("utf-8"))


def test_folders_saved_before_line_encoding_keep_their_whole_document_encoding(trained, tmp_path):
  # Their runs' models and token stores were made with whole-document ids.
  folder = trained["bpe"].save(tmp_path / "bpe")
  meta = json.loads((folder / "tokenizer.json").read_text())
  assert meta["encode_lines"] is True
  del meta["encode_lines"]
  (folder / "tokenizer.json").write_text(json.dumps(meta))
  old = tokenizers.load(folder)
  assert old.encode("a\nbank") == old.processor.encode("a\nbank")
  assert old.encode("a\nbank") != trained["bpe"].encode("a\nbank")
  assert old.decode(old.encode("a\n bank\n")) == "a\n bank\n"


def test_encode_batch_matches_encode(trained):
  for tokenizer in trained.values():
    assert tokenizer.encode_batch(ROUND_TRIP) == [tokenizer.encode(t) for t in ROUND_TRIP]


def test_special_ids_are_shared(trained):
  for kind, tokenizer in trained.items():
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id) == (0, 1, 2), kind
    if kind != "byte":
      assert tokenizer.unk_id == 3
    assert tokenizer.id_to_piece(0) == "<pad>"


def test_stats_counted_by_hand():
  # char tokenizer trained on "ab a", applied to "ab ac": 5 tokens, one <unk> (c),
  # 2 whitespace-separated words (one containing <unk>), 5 bytes, 5 chars, 3 entries used.
  tok = tokenizers.train("char", 100, ["ab a"])
  result = stats.compute(tok, ["ab ac"])
  assert result.tokens == 5 and result.words == 2 and result.bytes == 5 and result.chars == 5
  assert result.tokens_per_word == pytest.approx(2.5)
  assert result.bytes_per_token == pytest.approx(1.0)
  assert result.unk_rate == pytest.approx(1 / 5)
  assert result.words_with_unk_rate == pytest.approx(1 / 2)
  assert result.vocab_size == 4 + 3
  assert result.vocab_used == 4  # a, b, space, <unk>
  assert result.vocab_use_share == pytest.approx(4 / 7)
  assert result.continued_word_share == 1.0  # "ab" and "ac" are two characters each
  # tokens a, b, " ", a, <unk>: p = (2/5, 1/5, 1/5, 1/5); H_2.5 = ln(sum p^2.5) / (1 - 2.5)
  # = ln(0.101193 + 3 x 0.017889) / -1.5 = 1.24349 nats; over ln 7 = 1.94591: 0.63903
  assert result.renyi_efficiency == pytest.approx(0.63903, abs=1e-5)
  assert stats.renyi_efficiency([5], 7) == 0.0  # one token type: no information
  assert stats.renyi_efficiency([1] * 7, 7) == pytest.approx(1.0)  # uniform over the vocabulary
  assert result.round_trip_error_at == 4  # "ab a\ufffd": the unknown "c"
  # byte: "é" is 2 bytes, 1 char
  byte = tokenizers.train("byte", 259, ["x"])
  result = stats.compute(byte, ["é é"])
  assert (result.tokens, result.bytes, result.chars, result.words) == (5, 5, 3, 2)
  assert result.chars_per_token == pytest.approx(3 / 5)
  # word: "the cat , the dog" -> pre-tokens the cat , the dog ; "dog" unknown
  word = tokenizers.train("word", 100, ["the cat, the"])
  result = stats.compute(word, ["the cat, the dog"])
  assert result.tokens == 5 and result.words == 4
  assert result.unk_rate == pytest.approx(1 / 5)
  assert result.words_with_unk_rate == pytest.approx(1 / 4)
  assert result.continued_word_share == pytest.approx(1 / 4)  # "cat," is cat + ","
  assert result.round_trip_error_at == len("the cat, the ")  # decoded "<unk>" for "dog"
  assert stats.compute(byte, ["é é"]).round_trip_error_at is None


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", tokenizers.KINDS)
def test_empty_input_is_an_error(kind):
  with pytest.raises(TokenizerError, match="empty"):
    tokenizers.train(kind, 300, ["", "  \n "])


@pytest.mark.parametrize("kind, units", [("char", "characters"), ("word", "words")])
def test_a_vocabulary_with_no_room_after_the_specials_names_the_minimum(kind, units):
  with pytest.raises(TokenizerError, match=rf"--vocab-size 3 leaves no room for {units} after the 4 "
                                           r"special tokens; use at least 5"):
    tokenizers.train(kind, 3, ["hello there"])
  assert tokenizers.train(kind, 5, ["hello there"]).vocab_size == 5


def test_non_utf8_file_names_file_and_offset(tmp_path, capsys):
  good = tmp_path / "good.txt"
  good.write_text("fine text\n")
  bad = tmp_path / "bad.txt"
  bad.write_bytes(b"hello \xff world")
  out = tmp_path / "out"
  code = cli.main(["tokenizer", "train", "--kind", "char", "--vocab-size", "50", "--input",
                   str(good), str(bad), "--out", str(out)])
  err = capsys.readouterr().err
  assert code == 2
  assert "bad.txt is not UTF-8: byte offset 6 (0xff)" in err
  assert not out.exists()


def test_vocabulary_too_large_says_largest_that_works(tmp_path):
  with pytest.raises(TokenizerError, match=r"too large for this corpus.*use --vocab-size (\d+) or less") as err:
    train("bpe", vocab_size=100_000)
  largest = int(str(err.value).split("use --vocab-size ")[1].split()[0])
  assert train("bpe", vocab_size=largest).vocab_size == largest


@pytest.mark.parametrize("byte_fallback", [True, False])
def test_vocabulary_smaller_than_character_set(byte_fallback):
  with pytest.raises(TokenizerError, match="smaller than the character set") as err:
    train("unigram", vocab_size=60, byte_fallback=byte_fallback)
  # the fix offered is the one not already set
  assert ("--no-byte-fallback" in str(err.value)) == byte_fallback
  assert ("use --byte-fallback" in str(err.value)) == (not byte_fallback)


def test_missing_and_foreign_tokenizer_folders(tmp_path):
  with pytest.raises(TokenizerError, match="does not exist"):
    tokenizers.load(tmp_path / "nothing")
  (tmp_path / "empty").mkdir()
  with pytest.raises(TokenizerError, match="not a tokenizer folder"):
    tokenizers.load(tmp_path / "empty")
  foreign = tmp_path / "foreign"
  foreign.mkdir()
  (foreign / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE"}}))
  with pytest.raises(TokenizerError, match="not written by llm_input"):
    tokenizers.load(foreign)
  (foreign / "tokenizer.json").write_bytes(b"\x00{{")
  with pytest.raises(TokenizerError, match="corrupted"):
    tokenizers.load(foreign)


def test_failed_training_leaves_previous_folder_intact(tmp_path, capsys):
  corpus = tmp_path / "c.txt"
  corpus.write_text(CORPUS)
  out = tmp_path / "tok"
  assert cli.main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "400", "--input",
                   str(corpus), "--out", str(out)]) == 0
  before = {p.name: p.read_bytes() for p in out.iterdir()}
  assert cli.main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "999999", "--input",
                   str(corpus), "--out", str(out)]) == 2
  assert {p.name: p.read_bytes() for p in out.iterdir()} == before
  assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tok.tmp")]


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
  precious = tmp_path / "precious"
  precious.mkdir()
  (precious / "thesis.tex").write_text("do not delete")
  with pytest.raises(TokenizerError, match="not a tokenizer folder"):
    train("byte").save(precious)
  assert (precious / "thesis.tex").read_text() == "do not delete"


def test_input_glob_without_files(tmp_path, capsys):
  code = cli.main(["tokenizer", "train", "--kind", "char", "--vocab-size", "50", "--input",
                   str(tmp_path / "*.txt"), "--out", str(tmp_path / "o")])
  assert code == 2 and "matches no files" in capsys.readouterr().err


# -- commands --------------------------------------------------------------------------------

def test_cli_train_stats_show(tmp_path, capsys):
  corpus = tmp_path / "c.txt"
  corpus.write_text(CORPUS)
  out = tmp_path / "bpe"
  assert cli.main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "400", "--input",
                   str(tmp_path / "*.txt"), "--out", str(out)]) == 0
  capsys.readouterr()
  assert cli.main(["tokenizer", "stats", "--tokenizer", str(out), "--input", str(corpus), "--json"]) == 0
  result = json.loads(capsys.readouterr().out)
  assert set(result) == {"tokens_per_word", "bytes_per_token", "chars_per_token", "unk_rate",
                         "words_with_unk_rate", "vocab_size", "vocab_used", "encode_mb_per_s"}
  assert result["vocab_size"] == 400 and result["unk_rate"] == 0.0
  assert 1.0 < result["tokens_per_word"] < 3.0
  assert cli.main(["tokenizer", "show", "--tokenizer", str(out), "The bank by the river"]) == 0
  shown = capsys.readouterr().out
  assert "'The bank by the river' ->" in shown and "ids:" in shown and "'▁bank'" in shown
