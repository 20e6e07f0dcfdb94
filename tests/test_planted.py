"""Tests written against plausible bugs: each one fails when the bug named in its docstring is
planted (see docs/testing.md for how each was checked)."""

import math
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from llm_input import tokenizers
from llm_input.errors import ConfigError
from llm_input.model import attention as attention_lib
from llm_input.model import positions as positions_lib
from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.tokenizers import stats
from llm_input.train import sample as sample_lib

from helpers import numpy_rope, paper_sinusoidal, spy

UNICODE_TEXT = ("Café crème brûlée, naïve façade.\n東京は雨です。 日本語のテキスト\n"
                "emoji 🙂👍🏽 and maths ∑x² ≠ ∞; Ελληνικά; Ünïcödé words\n")


def small(**kw):
  return ModelConfig(**{**dict(vocab_size=61, d_model=32, num_layers=2, num_heads=4, max_len=64,
                               init_std=0.3), **kw})


# -- RoPE ------------------------------------------------------------------------------------

def test_apply_rope_equals_an_explicit_numpy_rotation():
  """Bug: wrong frequencies (base^(-i/d)), sin/cos swapped, the pairs mixed up, or bfloat16
  queries and keys coming back as float32 (the scores would then silently run in float32)."""
  rng = np.random.default_rng(0)
  d_head, base = 8, 10000.0
  x = rng.normal(size=(2, 5, 3, d_head)).astype(np.float32)
  pos = np.array([[0, 1, 2, 7, 100], [3, 3, 9, 40, 1000]])
  got = np.asarray(positions_lib.apply_rope(jnp.asarray(x), jnp.asarray(pos), base))
  np.testing.assert_allclose(got, numpy_rope(x, pos, base), atol=2e-5)
  # bfloat16 in, bfloat16 out: rotated in float32, then rounded once (relative error <= 2^-8)
  x16 = jnp.asarray(x, jnp.bfloat16)
  got16 = positions_lib.apply_rope(x16, jnp.asarray(pos), base)
  assert got16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(got16, np.float32), numpy_rope(np.asarray(x16, np.float32), pos, base),
                             rtol=2 ** -8, atol=2e-5)


def test_causal_rope_model_is_invariant_to_shifting_every_position():
  """Bug: RoPE applied to queries but not keys (or keys but not queries): scores then depend on
  absolute positions, and shifting every position changes the logits."""
  model = transformer.create(small(positions="rope"))
  ids = jnp.array([[3, 14, 15, 9, 26, 5, 35, 8, 9, 7]])
  base = jnp.arange(10)[None]
  ref = np.asarray(model(ids, base))
  for shift in (1, 17):
    np.testing.assert_allclose(np.asarray(model(ids, base + shift)), ref, atol=2e-5)
  # and order matters: the same tokens at other relative offsets give other logits
  assert np.abs(np.asarray(model(ids, base * 2)) - ref).max() > 1e-2


# -- positions and permutations ----------------------------------------------------------------

@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rope"])
def test_positions_travel_with_their_tokens(positions):
  """Without a causal mask, permuting tokens together with their positions permutes the
  output exactly; permuting tokens alone (positions stay) does not, by a clear margin.
  Bugs: positions ignored, or read from the array index instead of the positions given."""
  model = transformer.create(small(positions=positions, causal=False, init_std=0.5))
  ids = jnp.array([[5, 8, 13, 21, 34, 55, 2, 3]])
  perm = np.array([3, 0, 7, 5, 1, 6, 2, 4])
  pos = jnp.arange(8)[None]
  out = np.asarray(model(ids, pos))
  moved = np.asarray(model(ids[:, perm], pos[:, perm]))
  np.testing.assert_allclose(moved, out[:, perm], atol=2e-5)
  stayed = np.asarray(model(ids[:, perm], pos))
  assert np.abs(stayed - out[:, perm]).max() > 0.05 * np.abs(out).max()


def test_bfloat16_error_is_what_bfloat16_rounding_predicts():
  """Bug: a float32 path silently running in bfloat16 (or the reverse) where it should not.
  bfloat16 keeps 8 significant bits (relative rounding 2^-9); through two blocks the logits
  move by a small multiple of that times their scale. Measured: max error / max |logit| =
  0.019 for this model; the bound 0.06 is 16 x 2^-8, and 0 would mean no bf16 at all."""
  cfg = small(mlp="swiglu", positions="rope", norm="rmsnorm", init_std=0.02)
  f32 = transformer.create(cfg)
  bf16 = nnx.merge(nnx.split(transformer.abstract(small(mlp="swiglu", positions="rope", norm="rmsnorm",
                                                          init_std=0.02, dtype="bfloat16")), nnx.Param)[0],
                   nnx.state(f32, nnx.Param))
  ids = jnp.array([[1, 2, 3, 4, 5, 6, 7, 8]])
  a, b = np.asarray(f32(ids)), np.asarray(bf16(ids))
  relative = np.abs(a - b).max() / np.abs(a).max()
  assert 2 ** -12 < relative < 16 * 2 ** -8, relative


# -- sampling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_filtered_logits_are_logits_over_temperature(temperature):
  """Bug: logits multiplied by the temperature instead of divided."""
  logits = jnp.asarray([[2.0, 1.0, -0.5, 0.25]])
  np.testing.assert_allclose(np.asarray(sample_lib.filter_logits(logits, temperature, 0, 1.0)),
                             np.asarray(logits) / temperature, rtol=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_draws_follow_softmax_of_logits_over_temperature(temperature):
  """Frequencies of 20,000 draws match softmax(l / T). Tolerance: 5 standard errors of a
  binomial frequency, sqrt(p(1-p)/n) <= 0.0036, so 0.018; multiplying by T instead moves the
  probabilities by 0.2 or more here."""
  logits = jnp.asarray([[1.5, 0.5, 0.0, -1.0]])
  n = 20000
  keys = jax.random.split(jax.random.key(7), n)
  draws = np.asarray(jax.vmap(lambda k: sample_lib.choose(logits, k, temperature, 0, 1.0))(keys)).ravel()
  freq = np.bincount(draws, minlength=4) / n
  want = np.asarray(jax.nn.softmax(np.asarray(logits)[0] / temperature))
  assert np.abs(freq - want).max() < 5 * math.sqrt(0.25 / n), (freq, want)


# -- statistics and byte counts on non-ASCII text ------------------------------------------------

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


def _trained(kind):
  texts = [UNICODE_TEXT * 3, "plain ascii words and more words\n" * 5]
  size = {"char": 200, "byte": 259, "word": 200, "unigram": 325}.get(kind, 420)
  return tokenizers.train(kind, size, texts)


@pytest.mark.parametrize("kind", ["char", "byte", "bpe", "unigram", "word"])
def test_byte_counts_cover_exactly_the_text_on_accents_cjk_and_emoji(kind):
  """Every token's count is the UTF-8 length of exactly the text it stands for. The reference
  is independent of encode_with_byte_counts: decoding growing prefixes (lossless kinds), the
  raw bytes (byte), or the words and the whitespace before them (word). Bugs: characters
  counted instead of bytes; the space before a word dropped."""
  tok = _trained(kind)
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
  tok = _trained(kind)
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


# -- killing the surviving mutants of `make mutation` ------------------------------------------

def test_sinusoidal_positions_equal_the_paper_formula():
  """PE[p, 2i] = sin(p / 10000^(2i/d)), PE[p, 2i+1] = cos(same), for even and odd d (an odd
  last column is zero). Mutants of the frequencies, the interleaving or the padding survived
  every invariance test."""
  pos = np.array([[0, 1, 5, 63]])
  for d in (8, 9):
    np.testing.assert_allclose(np.asarray(positions_lib.sinusoidal(jnp.asarray(pos), d)),
                               paper_sinusoidal(pos, d), atol=1e-5)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal", "none"])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_absolute_positions_add_the_position_vector_and_keep_the_dtype(kind, dtype):
  """x + P[position], not x - P (a different, unpublished encoding for sinusoidal), and a
  bfloat16 model stays bfloat16 (a float32 table would promote every later layer)."""
  cfg = small(positions=kind, d_model=8, max_len=16)
  module = positions_lib.AbsolutePositions(cfg, rngs=nnx.Rngs(0))
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 3, 8)), dtype)
  pos = np.array([[0, 1, 2], [7, 3, 15]])
  got = module(x, jnp.asarray(pos))
  assert got.dtype == dtype
  if kind == "learned":
    table = np.asarray(module.table[...])[pos]
  elif kind == "sinusoidal":
    table = paper_sinusoidal(pos, 8)
  else:
    table = np.zeros((2, 3, 8))
  want = np.asarray(x, np.float32) + table
  atol = 1e-6 if dtype == jnp.float32 else 2 ** -8 * np.abs(want).max()  # one bfloat16 rounding
  np.testing.assert_allclose(np.asarray(got, np.float32), want, atol=atol)


def test_blocked_attention_really_splits_the_queries(monkeypatch):
  """Query block i attends to keys [0, (i + 1) * block): a fallback to one L x L block gives
  the same numbers (so the equality tests pass) but skips none of the masked work."""
  calls = []
  spy(monkeypatch, attention_lib, "_attend", lambda q, k, v, mask: calls.append((q.shape[1], k.shape[1])))
  q = k = v = jnp.ones((1, 8, 2, 4))
  mask = attention_lib.attention_mask(jnp.ones((1, 8), jnp.int32), causal=True)
  for block, want in [(2, [(2, 2), (2, 4), (2, 6), (2, 8)]), (1, [(1, s) for s in range(1, 9)]),
                      (4, [(4, 4), (4, 8)]), (3, [(8, 8)]), (8, [(8, 8)]), (0, [(8, 8)])]:
    calls.clear()
    attention_lib.blocked_attention(q, k, v, mask, block)
    assert calls == want, block


def test_utf8_lengths_at_every_encoding_boundary():
  """One code point either side of each UTF-8 length boundary (0x80, 0x800, 0x10000)."""
  from llm_input.tokenizers.char import utf8_lengths

  text = "\x7f\x80\u07ff\u0800\uffff\U00010000\U0010ffff"
  assert utf8_lengths(text).tolist() == [len(c.encode("utf-8")) for c in text] == [1, 2, 2, 3, 3, 4, 4]


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


def test_top_k_and_top_p_per_row_and_at_the_boundary():
  """Filtering is per row of a batch (a sort, softmax or min over the whole batch would mix
  rows), removed tokens get -inf (not +inf), and top_p keeps a token only while the mass
  before it is strictly below p."""
  # a peaked row and a flat one: mixed together, the peaked row's mass would cut the flat row
  mixed = jnp.log(jnp.asarray([[0.6, 0.3, 0.05, 0.05], [0.2, 0.22, 0.3, 0.28]]))
  kept = np.isfinite(np.asarray(sample_lib.filter_logits(mixed, 1.0, 0, 0.5)))
  assert kept.tolist() == [[True, False, False, False], [False, False, True, True]]
  logits = jnp.log(jnp.asarray([[0.5, 0.25, 0.125, 0.125], [0.125, 0.125, 0.25, 0.5]]))
  top_p = np.asarray(sample_lib.filter_logits(logits, 1.0, 0, 0.5))
  assert (np.isfinite(top_p) == [[True, False, False, False], [False, False, False, True]]).all()
  assert (top_p[~np.isfinite(top_p)] == -np.inf).all()
  top_p = np.asarray(sample_lib.filter_logits(logits, 1.0, 0, 0.75))  # 0.5 + 0.25 reaches 0.75
  assert np.isfinite(top_p).sum(axis=1).tolist() == [2, 2]
  top_k = np.asarray(sample_lib.filter_logits(logits, 1.0, 2, 1.0))
  assert np.isfinite(top_k).tolist() == [[True, True, False, False], [False, False, True, True]]
  assert (top_k[~np.isfinite(top_k)] == -np.inf).all()
  assert np.asarray(sample_lib.choose(logits, jax.random.key(0), 0.0, 0, 1.0)).tolist() == [0, 3]


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


def test_generation_stops_at_the_context_and_keeps_the_prompts_tail():
  """Bug: generating past the context (the cache and the learned positions end there), one token
  when none was asked for, a long prompt cut at the wrong end, or `stop_id` ignored or obeyed
  whenever it is set. Context 8: a 5-token prompt
  has room for 3 new tokens; a 12-token prompt keeps its last 7 and gets 1."""
  cfg = small(max_len=8, init_std=0.3)
  params = nnx.to_pure_dict(nnx.state(transformer.create(cfg), nnx.Param))
  sampler = sample_lib.Sampler(cfg, params, context=8)
  prompt = [1, 5, 9, 12, 7]
  assert sampler.generate(prompt, 0) == []
  assert sampler.generate(prompt, 10) == sample_lib.generate_without_cache(cfg, params, prompt, 3)
  long_prompt = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]
  assert [sampler.kept_prompt(n) for n in (1, 7, 8, 12)] == [1, 7, 7, 7]
  assert sampler.generate(long_prompt, 10) == sample_lib.generate_without_cache(cfg, params, long_prompt[-7:], 1)
  # stop_id ends the output at its first occurrence, and only there
  greedy = sampler.generate(prompt, 3)
  stop = greedy[1]
  assert sampler.generate(prompt, 3, stop_id=stop) == greedy[:greedy.index(stop) + 1]
  absent = next(i for i in range(cfg.vocab_size) if i not in greedy)
  assert sampler.generate(prompt, 3, stop_id=absent) == greedy


@pytest.mark.parametrize("field, value, message", [
    ("max_new_tokens", 0, r"sample.max_new_tokens must be an integer >= 1, got 0"),
    ("max_new_tokens", 2.0, r"sample.max_new_tokens must be an integer >= 1, got 2.0"),
    ("temperature", -0.1, r"sample.temperature must be >= 0 \(0 = greedy\), got -0.1"),
    ("top_k", -1, r"sample.top_k must be an integer >= 0 \(0 = all\), got -1"),
    ("top_k", 1.5, r"sample.top_k must be an integer >= 0 \(0 = all\), got 1.5"),
    ("top_p", 0.0, r"sample.top_p must be in \(0, 1\] \(1 = all\), got 0.0"),
    ("top_p", 1.5, r"sample.top_p must be in \(0, 1\] \(1 = all\), got 1.5"),
    ("prompts", ("to be", 3), r"sample.prompts must be strings, got \['to be', 3\]")])
def test_sample_config_refuses_each_bad_value_by_name(field, value, message):
  """Bug: a sampling bound off by one (greedy temperature 0, top_p 1 or one new token refused;
  top_p 0 or a fractional count accepted) or a message that does not name the field."""
  with pytest.raises(ConfigError, match=f"^{message}$"):
    sample_lib.SampleConfig(**{field: value})
  edges = dict(max_new_tokens=1, temperature=0.0, top_k=0, top_p=1.0, prompts=("to be",))
  sample_lib.SampleConfig(**edges)  # every edge of every range is accepted
  sample_lib.SampleConfig(top_p=1e-3)


def test_sample_config_from_config_reads_every_field():
  cfg = ml_collections.ConfigDict(dict(sample=dict(prompts=["to be"], max_new_tokens=7, temperature=0.5,
                                                   top_k=3, top_p=0.9)))
  assert sample_lib.SampleConfig.from_config(cfg) == sample_lib.SampleConfig(
      prompts=("to be",), max_new_tokens=7, temperature=0.5, top_k=3, top_p=0.9)


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
