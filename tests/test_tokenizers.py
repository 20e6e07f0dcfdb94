"""Tokenizers: round trips, determinism, unknowns, statistics by hand, and every bad input."""

import json
import re

import pytest

from llm_input import cli, tokenizers
from llm_input.tokenizers import stats
from llm_input.errors import TokenizerError
from helpers import UNICODE_TEXT, trained_on_unicode

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


# -- planted-bug tests (each fails with the bug its docstring names; docs/testing.md) ----

@pytest.mark.planted
def test_stats_by_hand_on_non_ascii_text():
  """Bug: bytes_per_token computed from characters (equal on ASCII, not here)."""
  text = "café 東京 🙂"  # 9 characters; bytes: 3 + 2 (é) + 1 + 6 (東京) + 1 + 4 (🙂) = 17
  chars, utf8 = len(text), len(text.encode("utf-8"))
  assert (chars, utf8) == (9, 17)
  byte = tokenizers.train("byte", 259, [text])
  char = tokenizers.train("char", 100, [text])
  result_byte = stats.compute(byte, [text])
  result_char = stats.compute(char, [text])
  assert result_byte.bytes_per_token == pytest.approx(1.0)
  assert result_byte.chars_per_token == pytest.approx(9 / 17)
  assert result_char.bytes_per_token == pytest.approx(17 / 9)
  assert result_char.chars_per_token == pytest.approx(1.0)
  assert result_char.tokens_per_word == pytest.approx(9 / 3)
  assert result_byte.tokens_per_word == pytest.approx(17 / 3)


@pytest.mark.planted
@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram", "word"])
def test_byte_counts_cover_exactly_the_text_on_accents_cjk_and_emoji(kind):
  """Every token's count is the UTF-8 length of exactly the text it stands for. The reference
  is independent of encode_with_byte_counts: decoding growing prefixes (lossless kinds), the
  raw bytes (byte), or the words and the whitespace before them (word). Bugs: characters
  counted instead of bytes; the space before a word dropped."""
  tok = trained_on_unicode(kind)
  ids, counts = tok.encode_with_byte_counts(UNICODE_TEXT)
  assert len(ids) == len(counts)
  assert sum(counts) == len(UNICODE_TEXT.encode("utf-8"))
  if kind == "byte":
    assert counts == [1] * len(UNICODE_TEXT.encode("utf-8"))
  elif kind == "word":
    spans = [m.span() for m in re.finditer(r"\w+(?:'\w+)*|\n|[^\w\s]", UNICODE_TEXT)]
    assert len(spans) == len(ids)
    starts = [0] + [end for _, end in spans[:-1]]  # each token also owns the gap before it
    want = [len(UNICODE_TEXT[a:end].encode("utf-8")) for a, (_, end) in zip(starts, spans)]
    want[-1] += len(UNICODE_TEXT[spans[-1][1]:].encode("utf-8"))
    assert counts == want
  else:
    assert tok.decode(ids) == UNICODE_TEXT
    prefix_bytes = [len(tok.decode(ids[:j]).encode("utf-8")) for j in range(len(ids) + 1)]
    boundaries = [j for j in range(len(ids) + 1)
                  if "\ufffd" not in tok.decode(ids[:j])]  # skip cuts inside a byte-fallback character
    for a, b in zip(boundaries, boundaries[1:]):
      assert sum(counts[a:b]) == prefix_bytes[b] - prefix_bytes[a], (a, b)


@pytest.mark.planted
def test_utf8_lengths_at_every_encoding_boundary():
  """One code point either side of each UTF-8 length boundary (0x80, 0x800, 0x10000)."""
  from llm_input.tokenizers.char import utf8_lengths

  text = "\x7f\x80\u07ff\u0800\uffff\U00010000\U0010ffff"
  assert utf8_lengths(text).tolist() == [len(c.encode("utf-8")) for c in text] == [1, 2, 2, 3, 3, 4, 4]


@pytest.mark.planted
@pytest.mark.parametrize("lowercase", [False, True])
def test_word_ids_and_counts_agree_with_encode_including_trailing_space(lowercase):
  """encode_with_byte_counts gives encode's ids (case kept or folded as trained) and gives
  trailing whitespace to the last token; whitespace alone has no tokens."""
  tok = tokenizers.train("word", 100, ["The River and the bank.\nTHE END"],
                         tokenizers.TokenizerOptions(lowercase=lowercase))
  text = "The river  THE Bank \t\n end  \t"
  ids, counts = tok.encode_with_byte_counts(text)
  assert ids == tok.encode(text)
  assert (tok.unk_id in ids) != lowercase  # "river", "Bank", "end": known only once lower-cased
  assert sum(counts) == len(text.encode("utf-8")) and counts[-1] == len(" end  \t")
  assert tok.encode_with_byte_counts(" \t \n"[:3]) == ([], [])


@pytest.mark.planted
def test_stats_count_unknowns_over_every_text():
  """unk counts add up over texts; words_with_unk counts words, not texts; no unk, no rate."""
  tok = tokenizers.train("word", 100, ["a b c"])
  result = stats.compute(tok, ["a x b", "y c z z"])  # x, y, z, z unknown: 4 of 7 tokens
  assert result.unk_rate == pytest.approx(4 / 7)
  assert result.words_with_unk_rate == pytest.approx(4 / 7)
  clean = stats.compute(tok, ["a b", "c"])
  assert clean.unk_rate == 0 and clean.words_with_unk_rate == 0 and clean.vocab_used == 3
  empty = stats.compute(tok, [" "])
  assert (empty.tokens_per_word, empty.bytes_per_token, empty.unk_rate) == (0.0, 0.0, 0.0)


@pytest.mark.planted
def test_word_decode_spacing_specials_and_a_reloaded_lowercase_tokenizer(tmp_path):
  """Decoding re-inserts spaces (none before punctuation or a newline, none after an opening
  bracket), skips specials, spells <unk>; pieces map to the right words; a lowercase tokenizer
  loaded from its folder still lower-cases."""
  tok = tokenizers.train("word", 100, ["the king ( and ) queen , end .\nnew line"],
                         tokenizers.TokenizerOptions(lowercase=True))
  ids = tok.encode("The KING (and) queen, end.\nNew line zebra")
  assert tok.decode([tok.bos_id] + ids + [tok.eos_id]) == "the king (and) queen, end.\nnew line <unk>"
  assert [tok.id_to_piece(i) for i in ids[:2]] == ["the", "king"]
  assert tok.id_to_piece(tok.num_special_ids) == tok.words[0] and tok.id_to_piece(tok.unk_id) == "<unk>"
  again = tokenizers.load(tok.save(tmp_path / "word"))
  assert again.encode("The KING") == tok.encode("the king") and again.encode_with_byte_counts("A B")[0] == tok.encode("a b")


@pytest.mark.planted
def test_byte_and_char_decoding_and_pieces_at_their_edges():
  """Decoding skips specials and out-of-range ids and replaces broken UTF-8; pieces show
  printable ASCII as itself and every other byte as <0xNN>; the first vocabulary entry sits
  right after the specials."""
  byte = tokenizers.train("byte", 259, ["x"])
  e_acute = byte.encode("é")
  assert byte.decode([byte.bos_id, *e_acute, byte.eos_id, byte.vocab_size]) == "é"
  assert byte.decode(e_acute[:1]) == "\ufffd"  # half a character
  pieces = [byte.id_to_piece(byte.num_special_ids + v) for v in (0x00, 0x1F, 0x20, 0x7E, 0x7F, 0xFF)]
  assert pieces == ["<0x00>", "<0x1F>", " ", "~", "<0x7F>", "<0xFF>"]
  assert [byte.id_to_piece(i) for i in range(byte.num_special_ids)] == ["<pad>", "<s>", "</s>"]
  char = tokenizers.train("char", 10, ["abca"])
  first = char.num_special_ids
  assert [char.id_to_piece(first), char.id_to_piece(first + 1), char.id_to_piece(char.unk_id)] == ["a", "b", "<unk>"]
  assert char.decode([char.unk_id, first, char.vocab_size, char.pad_id]) == "\ufffda"


@pytest.mark.planted
def test_stats_table_puts_each_figure_beside_its_own_label():
  """Bug: `llm-input stats` printing one figure under another's label (bytes per token beside
  the characters label, say), which a reader of the table cannot detect. Every figure here is
  distinct, so each line pins its own."""
  figures = stats.TokenizerStats(tokens_per_word=1.3125, bytes_per_token=4.0625, chars_per_token=3.5,
                                 unk_rate=0.0125, words_with_unk_rate=0.025, vocab_size=50257,
                                 vocab_used=1234, encode_mb_per_s=12.345, continued_word_share=0.375,
                                 renyi_efficiency=0.4321, vocab_use_share=0.0246, round_trip_error_at=17,
                                 tokens=1000, words=762, bytes=4062, chars=3500)
  assert stats.format_table(figures).split("\n") == [
      "tokens per word (words = whitespace-separated)  1.3125",
      "words cut into 2+ pieces                        37.5000%",
      "bytes per token (UTF-8)                         4.0625",
      "characters per token                            3.5000",
      "unknown-token rate                              1.2500%",
      "words containing <unk>                          2.5000%",
      "vocabulary size                                 50,257",
      "vocabulary entries used                         1,234 (2.46%)",
      "Rényi efficiency (order 2.5)                    0.4321",
      "exact round trip                                no: first difference at character 17",
      "encode throughput                               12.35 MB/s",
      "tokens / words / bytes / chars                  1,000 / 762 / 4,062 / 3,500"]
  assert figures.to_dict()["bytes_per_token"] == 4.0625 and len(figures.to_dict()) == 16
