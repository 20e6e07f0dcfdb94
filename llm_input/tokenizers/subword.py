"""Subwords: SentencePiece BPE and unigram, trained in-process from text.

Round trip: text is not normalised (`identity` rule, no NFKC) and whitespace is kept as
pieces (runs of spaces included; newline is a piece of its own), so decode(encode(x)) == x for
any text when `byte_fallback` is on (the default): characters outside the vocabulary become
their UTF-8 bytes. Exceptions, by design: with `byte_fallback=False` unseen characters become
`<unk>`; with `normalization="nmt_nfkc"` text is NFKC-normalised and extra whitespace
collapsed, so e.g. "ﬁ" comes back as "fi"; text containing U+2581 ("▁", SentencePiece's
space marker) decodes that character as a space.

Lines: SentencePiece trains on lines, giving each the dummy "▁" prefix, so a trained tokenizer
also encodes a document line by line (`encode_lines`): "THESEUS:\nNow" is `THESEUS:`, `\n`,
`▁Now`, the same `▁Now` as after a space, and decoding drops that prefix again after every
newline. Folders saved before this (no `encode_lines` in tokenizer.json) and imported models
encode whole documents, as their models were trained.
"""

from __future__ import annotations

import functools
import io
import pathlib
import random
import re
from collections.abc import Iterable, Sequence

import numpy as np
import sentencepiece as spm

from llm_input.errors import TokenizerError
from llm_input.tokenizers.base import BOS, EOS, PAD, SPECIAL_PIECES, UNK, Tokenizer
from llm_input.tokenizers.options import TokenizerOptions

MODEL_FILE = "sentencepiece.model"


class SentencePieceTokenizer(Tokenizer):
  def __init__(self, model_proto: bytes, kind: str, options: dict, encode_lines: bool = True):
    self.kind = kind
    self.options = dict(options)
    self.model_proto = model_proto
    self.processor = spm.SentencePieceProcessor(model_proto=model_proto)
    self.encode_lines = encode_lines
    # the model's own special ids (0-3 for the ones trained here; Llama 2: unk 0, bos 1, eos 2)
    p = self.processor
    self.pad_id, self.bos_id, self.eos_id, self.unk_id = (
        i if i >= 0 else None for i in (p.pad_id(), p.bos_id(), p.eos_id(), p.unk_id()))
    if self.eos_id is None:
      raise TokenizerError("this SentencePiece model has no end-of-sentence id (eos_id = -1); "
                           "llm_input ends every document with one")
    if self.bos_id is None:
      self.bos_id = self.eos_id
    if encode_lines:
      newline = self.processor.piece_to_id("\n")
      if self.processor.id_to_piece(newline) != "\n":
        raise TokenizerError("this SentencePiece model has no newline piece, so it cannot encode "
                             "line by line; retrain it with `llm-input tokenizer train`")
      self._newline_id = newline

  @classmethod
  def train(cls, kind: str, texts: Iterable[str], vocab_size: int,
            options: TokenizerOptions = TokenizerOptions(), num_threads: int = 2) -> "SentencePieceTokenizer":
    if kind not in ("bpe", "unigram"):
      raise TokenizerError(f"SentencePiece kind must be bpe or unigram, got {kind!r}")
    options.validate()
    byte_fallback, split_digits = options.byte_fallback, options.split_digits
    character_coverage, normalization = options.character_coverage, options.normalization
    max_sentences, seed = options.max_sentences, options.seed
    sentences = sample_lines(texts, max_sentences, seed)
    if not sentences:
      raise TokenizerError("no text to train on: the input is empty (or only whitespace)")
    if character_coverage == 1.0:
      # SentencePiece needs every character in the vocabulary at full coverage, plus the
      # specials, the newline piece and, with byte fallback, the 256 byte pieces.
      chars = len(set().union(*map(set, sentences)))
      needed = chars + len(SPECIAL_PIECES) + 1 + (256 if byte_fallback else 0)
      if vocab_size < needed:
        raise TokenizerError(f"--vocab-size {vocab_size} is smaller than the character set: the "
                             f"text has {chars} distinct characters, so {kind} needs at least "
                             f"{needed} (or lower --character-coverage"
                             + (", or turn byte fallback off with --no-byte-fallback or "
                                "tokenizer.byte_fallback=False: its 256 byte "
                                "pieces are part of that minimum)" if byte_fallback
                                else ", or use --byte-fallback)"))
    saved_options = dict(byte_fallback=byte_fallback, split_digits=split_digits,
                         character_coverage=character_coverage, normalization=normalization,
                         max_sentences=max_sentences, seed=seed)
    model = io.BytesIO()
    spm.set_random_generator_seed(seed)
    try:
      spm.SentencePieceTrainer.train(
          sentence_iterator=iter(sentences), model_writer=model, model_type=kind,
          vocab_size=vocab_size, character_coverage=character_coverage,
          byte_fallback=byte_fallback, split_digits=split_digits,
          normalization_rule_name=normalization,
          remove_extra_whitespaces=normalization == "nmt_nfkc",
          allow_whitespace_only_pieces=True, user_defined_symbols=["\n"],
          pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
          pad_piece=SPECIAL_PIECES[PAD], bos_piece=SPECIAL_PIECES[BOS],
          eos_piece=SPECIAL_PIECES[EOS], unk_piece=SPECIAL_PIECES[UNK],
          input_sentence_size=0, shuffle_input_sentence=False, max_sentence_length=1 << 16,
          num_threads=num_threads, minloglevel=2)
    except RuntimeError as err:
      raise _explain(err, kind, vocab_size) from None
    return cls(model.getvalue(), kind, saved_options)

  @classmethod
  def from_folder(cls, folder: pathlib.Path, meta: dict) -> "SentencePieceTokenizer":
    path = folder / MODEL_FILE
    if not path.is_file():
      raise TokenizerError(f"{folder} has tokenizer.json but no {MODEL_FILE}; retrain the tokenizer")
    try:
      return cls(path.read_bytes(), meta["kind"], meta.get("options", {}),
                 encode_lines=meta.get("encode_lines", False))
    except RuntimeError as err:
      raise TokenizerError(f"{path} is corrupted ({err}); retrain the tokenizer") from None

  def _metadata(self) -> dict:
    return {"options": self.options, "encode_lines": self.encode_lines}

  def word_ids(self, word: str) -> list[int]:
    # A word in running text follows a space, which SentencePiece marks with "▁"; a lone "▁"
    # piece before the word is the space itself, not part of the word.
    ids = self.encode(" " + word)
    return [i for i in ids if self.id_to_piece(i).replace("\u2581", "")] or ids

  def _write_files(self, folder: pathlib.Path) -> None:
    (folder / MODEL_FILE).write_bytes(self.model_proto)
    pieces = [f"{self.processor.id_to_piece(i)}\t{self.processor.get_score(i):.6g}"
              for i in range(self.vocab_size)]
    (folder / "vocab.tsv").write_text("\n".join(pieces) + "\n", encoding="utf-8")

  @property
  def vocab_size(self) -> int:
    return self.processor.get_piece_size()

  @property
  def special_token_ids(self) -> tuple[int, ...]:
    return tuple(i for i in range(self.vocab_size)
                 if self.processor.is_control(i) or self.processor.is_unknown(i))

  def encode(self, text: str) -> list[int]:
    return self.encode_batch([text])[0]

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    if not self.encode_lines:
      return self.processor.encode(list(texts), num_threads=2)
    lines = [text.split("\n") for text in texts]
    encoded = iter(self.processor.encode([line for doc in lines for line in doc], num_threads=2))
    out = []
    for doc in lines:
      ids = list(next(encoded))
      for _ in doc[1:]:
        ids.append(self._newline_id)
        ids.extend(next(encoded))
      out.append(ids)
    return out

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    if not self.encode_lines:
      return self._counted(text)
    ids, counts = [], []
    for i, line in enumerate(text.split("\n")):
      if i:
        ids.append(self._newline_id)
        counts.append(1)
      line_ids, line_counts = self._counted(line)
      ids.extend(line_ids)
      counts.extend(line_counts)
    return ids, counts

  def _counted(self, text: str) -> tuple[list[int], list[int]]:
    """Ids of one SentencePiece sentence and the UTF-8 bytes of `text` each accounts for."""
    ids = self.processor.encode(text)
    counts = self._piece_bytes[np.asarray(ids, dtype=np.int64)] if ids else np.zeros(0, np.int32)
    if len(counts) and counts[0] > 0:
      counts[0] -= 1  # the space SentencePiece prepends to every text (add_dummy_prefix)
    if int(counts.sum()) != len(text.encode("utf-8")):
      # <unk> pieces or normalisation: fall back to SentencePiece's own byte offsets.
      proto = self.processor.encode(text, return_type="proto")
      ids = [p.id for p in proto.pieces]
      counts = np.asarray([p.end - p.begin for p in proto.pieces], np.int32)
    return list(ids), counts.tolist()

  @functools.cached_property
  def _piece_bytes(self) -> np.ndarray:
    """UTF-8 bytes of each piece's surface text ('▁' is one space; byte pieces are 1 byte)."""
    sizes = np.zeros(self.vocab_size, np.int32)
    for i in range(self.vocab_size):
      if self.processor.is_byte(i):
        sizes[i] = 1
      elif not (self.processor.is_control(i) or self.processor.is_unknown(i)):
        sizes[i] = len(self.processor.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
    return sizes

  def decode(self, ids: Iterable[int]) -> str:
    ids = [int(i) for i in ids]
    if not self.encode_lines:
      return self.processor.decode(ids)
    lines, line = [], []
    for i in ids:
      if i == self._newline_id:
        lines.append(line)
        line = []
      else:
        line.append(i)
    return "\n".join(self.processor.decode(lines + [line]))

  def id_to_piece(self, token_id: int) -> str:
    return self.processor.id_to_piece(int(token_id))


def sample_lines(texts: Iterable[str], max_sentences: int, seed: int) -> list[str]:
  """Non-empty lines of the texts; a seeded uniform sample of `max_sentences` if there are more."""
  rng = random.Random(seed)
  sample: list[str] = []
  seen = 0
  for text in texts:
    for line in text.split("\n"):
      if not line.strip():
        continue
      seen += 1
      if len(sample) < max_sentences:
        sample.append(line)
      else:  # reservoir sampling keeps memory at max_sentences lines
        j = rng.randrange(seen)
        if j < max_sentences:
          sample[j] = line
  return sample


def _explain(err: RuntimeError, kind: str, vocab_size: int) -> TokenizerError:
  message = str(err)
  too_high = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
  if too_high:
    return TokenizerError(f"--vocab-size {vocab_size} is too large for this corpus: {kind} can "
                          f"find at most {too_high.group(2)} pieces in it; use --vocab-size "
                          f"{too_high.group(2)} or less, or train on more text")
  too_small = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
  if too_small:
    return TokenizerError(f"--vocab-size {vocab_size} is smaller than the character set "
                          f"({too_small.group(2)} characters to cover); raise --vocab-size or "
                          "lower --character-coverage")
  return TokenizerError(f"SentencePiece {kind} training failed: {message}")
