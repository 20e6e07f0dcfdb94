"""Tokenizers made elsewhere, with their own ids: Hugging Face `tokenizers`, tiktoken, SentencePiece.

`import_tokenizer(path)` reads a Hugging Face `tokenizer.json` (or its folder), a GPT-2 style
`vocab.json` + `merges.txt` folder, a tiktoken rank file (`*.tiktoken`, with its split pattern)
or a SentencePiece `*.model`, and returns a tokenizer of kind `hf`, `tiktoken` or
`sentencepiece` that encodes exactly as its library does (no special tokens added; the
pipeline adds `<s>`/`</s>` as configured) and saves into a tokenizer folder like any other.
Bytes per token come from each token's raw bytes (byte-level and tiktoken vocabularies) or
from the library's offsets into the text, never from decoding a token to text.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import pathlib
from collections.abc import Iterable, Sequence

import numpy as np

from llm_input.errors import TokenizerError
from llm_input.tokenizers.base import Tokenizer

HF_FILE = "hf_tokenizer.json"
RANKS_FILE = "ranks.tiktoken"
PATTERNS = {"gpt2": "r50k_base", "r50k": "r50k_base", "p50k": "p50k_base",
            "cl100k": "cl100k_base", "o200k": "o200k_base"}
# Names the common models give their specials, most specific first (used without a
# tokenizer_config.json and without --bos/--eos/--pad/--unk).
_ROLE_NAMES = {
    "bos": ("<|begin_of_text|>", "<s>", "<bos>", "[CLS]", "<|endoftext|>", "<|im_start|>"),
    "eos": ("<|end_of_text|>", "</s>", "<eos>", "[SEP]", "<|endoftext|>", "<|im_end|>"),
    "pad": ("<pad>", "[PAD]", "<|pad|>", "<|finetune_right_pad_id|>"),
    "unk": ("<unk>", "[UNK]", "<|unk|>"),
}


def _pick_roles(specials: dict[str, int], given: dict[str, str | None]) -> dict[str, int | None]:
  """bos/eos/pad/unk ids: the tokens named in `given`, else the usual names among `specials`."""
  roles = {}
  for role, names in _ROLE_NAMES.items():
    name = given.get(role)
    if name:
      if name not in specials:
        raise TokenizerError(f"--{role} {name!r} is not a special token of this tokenizer; its "
                             f"special tokens: {', '.join(sorted(specials)) or 'none'}")
      roles[role] = specials[name]
    else:
      roles[role] = next((specials[n] for n in names if n in specials), None)
  if roles["eos"] is None:
    raise TokenizerError("this tokenizer has no end-of-text special token that llm_input "
                         f"recognises (looked for {', '.join(_ROLE_NAMES['eos'])}); name one "
                         "with --eos TOKEN")
  if roles["bos"] is None:
    roles["bos"] = roles["eos"]  # GPT-2: <|endoftext|> opens and closes documents
  return roles


class _Imported(Tokenizer):
  """What the imported kinds share: their own special ids and a table of bytes per id."""

  roles: dict

  def _set_roles(self, roles: dict[str, int | None]) -> None:
    self.roles = dict(roles)
    self.pad_id, self.bos_id, self.eos_id, self.unk_id = (roles[r] for r in ("pad", "bos", "eos", "unk"))

  @property
  def special_ids(self) -> dict[str, int]:
    return {role: i for role, i in self.roles.items() if i is not None}

  def _metadata(self) -> dict:
    return {"roles": self.roles}

  def word_ids(self, word: str) -> list[int]:
    # After a space, as in running text: byte-level BPE folds the space into the word's first
    # token (" bank" -> "Ġbank"); a leading token that is only the space is not the word's.
    ids = self.encode(" " + word)
    if len(ids) > 1 and not self.decode(ids[:1]).strip():
      ids = ids[1:]
    return ids


class HuggingFaceTokenizer(_Imported):
  """A Hugging Face `tokenizers` tokenizer (GPT-2, Llama 3, Mistral, Qwen, WordPiece, ...)."""

  kind = "hf"

  def __init__(self, json_text: str, roles: dict[str, int | None] | None = None,
               given: dict[str, str | None] | None = None):
    """`roles`: saved ids; without them, picked from the added tokens (`given` names first)."""
    import tokenizers as hf  # noqa: PLC0415 (optional at import time of the package)

    try:
      self.library = hf.Tokenizer.from_str(json_text)
    except Exception as err:  # the library raises plain Exceptions for unknown types
      raise TokenizerError(f"the tokenizers library cannot read this tokenizer.json: {err}") from None
    self.json_text = json_text
    spec = json.loads(json_text)
    self.byte_level = "ByteLevel" in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])
    added = self.library.get_added_tokens_decoder()
    self._special_token_ids = tuple(sorted(i for i, t in added.items() if t.special))
    self._set_roles(roles or _pick_roles({t.content: i for i, t in added.items()}, given or {}))

  @classmethod
  def from_folder(cls, folder: pathlib.Path, meta: dict) -> "HuggingFaceTokenizer":
    return cls((folder / HF_FILE).read_text(encoding="utf-8"), meta["roles"])

  def _write_files(self, folder: pathlib.Path) -> None:
    (folder / HF_FILE).write_text(self.json_text, encoding="utf-8")

  @property
  def vocab_size(self) -> int:
    return self.library.get_vocab_size(with_added_tokens=True)

  @property
  def special_token_ids(self) -> tuple[int, ...]:
    return self._special_token_ids

  def encode(self, text: str) -> list[int]:
    return self.library.encode(text, add_special_tokens=False).ids

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return [e.ids for e in self.library.encode_batch(list(texts), add_special_tokens=False)]

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    encoding = self.library.encode(text, add_special_tokens=False)
    ids = encoding.ids
    if self.byte_level:
      counts = self._raw_bytes[np.asarray(ids, np.int64)] if ids else np.zeros(0, np.int64)
      if int(counts.sum()) == len(text.encode("utf-8")):
        return ids, counts.tolist()
    return ids, _counts_from_offsets(text, encoding.offsets)

  @functools.cached_property
  def _raw_bytes(self) -> np.ndarray:
    """UTF-8 bytes of each id of a byte-level vocabulary (its characters stand for bytes)."""
    byte_of = _byte_level_alphabet()
    sizes = np.zeros(self.vocab_size, np.int64)
    added = self.library.get_added_tokens_decoder()
    for i in range(self.vocab_size):
      if i in added:
        sizes[i] = len(added[i].content.encode("utf-8"))
        continue
      piece = self.library.id_to_token(i)
      if piece is not None:
        sizes[i] = sum(1 if c in byte_of else len(c.encode("utf-8")) for c in piece)
    return sizes

  def decode(self, ids: Iterable[int]) -> str:
    return self.library.decode([int(i) for i in ids], skip_special_tokens=False)

  def id_to_piece(self, token_id: int) -> str:
    piece = self.library.id_to_token(int(token_id))
    return "" if piece is None else piece


def _byte_level_alphabet() -> dict[str, int]:
  """GPT-2's byte -> printable character table (the one every byte-level BPE uses)."""
  printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
  chars, extra = {}, 0
  for b in range(256):
    if b in printable:
      chars[chr(b)] = b
    else:
      chars[chr(256 + extra)] = b
      extra += 1
  return chars


def _counts_from_offsets(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
  """Every UTF-8 byte of `text` given to one token: token i takes the bytes after the previous
  token's end up to its own end (what a pre-tokenizer drops goes to the next token; the last
  token takes the rest), so the counts sum to the text's length."""
  if not offsets:
    return []
  char_bytes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
  utf8 = 1 + (char_bytes >= 0x80) + (char_bytes >= 0x800) + (char_bytes >= 0x10000)
  byte_at = np.concatenate([[0], np.cumsum(utf8)])  # byte offset of each character boundary
  ends = np.maximum.accumulate(np.asarray([end for _, end in offsets], np.int64))
  ends[-1] = len(text)
  cuts = byte_at[ends]
  return np.diff(np.concatenate([[0], cuts])).astype(np.int64).tolist()


class TiktokenTokenizer(_Imported):
  """A tiktoken encoding: byte-level BPE ranks plus a split pattern and special tokens."""

  kind = "tiktoken"

  def __init__(self, ranks_text: bytes, pattern: str, specials: dict[str, int],
               roles: dict[str, int | None] | None = None):
    import tiktoken  # noqa: PLC0415

    self.ranks_text, self.pattern, self.specials = ranks_text, pattern, dict(specials)
    ranks = parse_tiktoken_ranks(ranks_text)
    try:
      self.library = tiktoken.Encoding("llm_input", pat_str=pattern, mergeable_ranks=ranks,
                                       special_tokens=self.specials)
    except ValueError as err:
      raise TokenizerError(f"tiktoken refused this encoding: {err}") from None
    self._set_roles(roles or _pick_roles(self.specials, {}))

  @classmethod
  def from_folder(cls, folder: pathlib.Path, meta: dict) -> "TiktokenTokenizer":
    return cls((folder / RANKS_FILE).read_bytes(), meta["pattern"], meta["specials"], meta["roles"])

  def _metadata(self) -> dict:
    return {"pattern": self.pattern, "specials": self.specials, **super()._metadata()}

  def _write_files(self, folder: pathlib.Path) -> None:
    (folder / RANKS_FILE).write_bytes(self.ranks_text)

  @property
  def vocab_size(self) -> int:
    return self.library.n_vocab

  @property
  def special_token_ids(self) -> tuple[int, ...]:
    return tuple(sorted(self.specials.values()))

  def encode(self, text: str) -> list[int]:
    return self.library.encode_ordinary(text)

  def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
    return self.library.encode_ordinary_batch(list(texts), num_threads=2)

  def encode_with_byte_counts(self, text: str) -> tuple[list[int], list[int]]:
    ids = self.encode(text)
    return ids, (self._raw_bytes[np.asarray(ids, np.int64)].tolist() if ids else [])

  @functools.cached_property
  def _raw_bytes(self) -> np.ndarray:
    sizes = np.zeros(self.vocab_size, np.int64)
    for i in range(self.vocab_size):
      try:
        sizes[i] = len(self.library.decode_single_token_bytes(i))
      except KeyError:  # an id between the ranks and the specials
        pass
    return sizes

  def decode(self, ids: Iterable[int]) -> str:
    return self.library.decode_bytes([int(i) for i in ids]).decode("utf-8", errors="replace")

  def id_to_piece(self, token_id: int) -> str:
    try:
      raw = self.library.decode_single_token_bytes(int(token_id))
    except KeyError:
      return ""
    try:
      return raw.decode("utf-8")
    except UnicodeDecodeError:
      return "".join(f"<0x{b:02X}>" for b in raw)


def parse_tiktoken_ranks(data: bytes) -> dict[bytes, int]:
  """A `.tiktoken` file: one `base64(token) rank` per line (tiktoken's own format)."""
  ranks = {}
  for number, line in enumerate(data.splitlines(), 1):
    if not line.strip():
      continue
    try:
      token, rank = line.split()
      ranks[base64.b64decode(token, validate=True)] = int(rank)
    except (ValueError, binascii.Error):
      raise TokenizerError(f"line {number} of the tiktoken file is not 'BASE64 RANK': "
                           f"{line[:60]!r}") from None
  if not ranks:
    raise TokenizerError("the tiktoken file holds no ranks")
  return ranks


def known_tiktoken_encoding(name: str) -> tuple[str, dict[str, int]]:
  """The split pattern and special tokens tiktoken defines for a named encoding, read from
  tiktoken's own definitions without downloading its ranks."""
  from tiktoken_ext import openai_public  # noqa: PLC0415

  constructor = openai_public.ENCODING_CONSTRUCTORS[PATTERNS.get(name, name)]
  saved = openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks
  openai_public.load_tiktoken_bpe = openai_public.data_gym_to_mergeable_bpe_ranks = lambda *a, **k: {}
  try:
    spec = constructor()
  finally:
    openai_public.load_tiktoken_bpe, openai_public.data_gym_to_mergeable_bpe_ranks = saved
  return spec["pat_str"], spec["special_tokens"]


def _gpt2_pair_json(folder: pathlib.Path) -> str:
  """A GPT-2 `vocab.json` + `merges.txt` pair as a byte-level BPE tokenizer.json."""
  from tokenizers import Tokenizer as HFTokenizer  # noqa: PLC0415
  from tokenizers import AddedToken, decoders, models, pre_tokenizers  # noqa: PLC0415

  vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
  try:
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    model = models.BPE.from_file(str(vocab_file), str(merges_file))
  except Exception as err:  # json errors and the library's plain Exceptions
    raise TokenizerError(f"{folder}: vocab.json + merges.txt could not be read ({err})") from None
  tokenizer = HFTokenizer(model)
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tokenizer.decoder = decoders.ByteLevel()
  # GPT-2 keeps <|endoftext|> in vocab.json (its tokenizer.json marks it special); a pair
  # written without it gets it after the vocabulary, where GPT-2 has it (50256).
  specials = [t for t in vocab if t.startswith("<|") and t.endswith("|>")] or ["<|endoftext|>"]
  tokenizer.add_special_tokens([AddedToken(t, special=True) for t in specials])
  return tokenizer.to_str()


def tokenizer_config(folder: pathlib.Path) -> dict:
  """A Hugging Face tokenizer_config.json beside the tokenizer, or {} when missing or unreadable."""
  path = pathlib.Path(folder) / "tokenizer_config.json"
  if not path.is_file():
    return {}
  try:
    config = json.loads(path.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError):
    return {}
  return config if isinstance(config, dict) else {}


def _roles_from_config(folder: pathlib.Path) -> dict[str, str | None]:
  """bos/eos/pad/unk names from a Hugging Face tokenizer_config.json beside the tokenizer."""
  config = tokenizer_config(folder)
  if not config:
    return {}
  roles = {}
  for role in _ROLE_NAMES:
    value = config.get(f"{role}_token")
    roles[role] = value.get("content") if isinstance(value, dict) else value
  return roles


FORMATS = ("a Hugging Face tokenizer.json (or its folder)", "a folder with GPT-2's vocab.json + merges.txt",
           "a tiktoken rank file (*.tiktoken, with --pattern)", "a SentencePiece model (*.model)")


def import_tokenizer(path: str | pathlib.Path, pattern: str | None = None,
                     roles: dict[str, str | None] | None = None,
                     specials: dict[str, int] | None = None) -> Tokenizer:
  """A tokenizer made elsewhere (see the module docstring), with its original ids."""
  path = pathlib.Path(path)
  given = {k: v for k, v in (roles or {}).items() if v}
  if not path.exists():
    raise TokenizerError(f"--from {str(path)!r} does not exist")
  folder = path if path.is_dir() else path.parent
  if path.is_dir() and (path / "tokenizer.json").is_file():
    path = path / "tokenizer.json"
  if path.is_file() and path.name.endswith(".json") and path.name != "vocab.json":
    try:
      spec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
      raise TokenizerError(f"{path} is not valid JSON ({err})") from None
    if isinstance(spec, dict) and spec.get("format") == "llm_input.tokenizer":
      raise TokenizerError(f"{path} is already an llm_input tokenizer folder; use it as it is")
    model_type = spec.get("model", {}).get("type") if isinstance(spec, dict) else None
    if model_type not in ("BPE", "WordPiece", "Unigram", "WordLevel"):
      raise TokenizerError(f"{path}: tokenizer model type {model_type!r} is not supported; "
                           "supported: BPE, WordPiece, Unigram, WordLevel")
    return HuggingFaceTokenizer(path.read_text(encoding="utf-8"), given={**_roles_from_config(folder), **given})
  if path.is_dir() and (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
    return HuggingFaceTokenizer(_gpt2_pair_json(path), given={**_roles_from_config(path), **given})
  if path.is_file() and path.suffix == ".tiktoken":
    if not pattern:
      raise TokenizerError(f"{path} is a tiktoken rank file, which does not record its split "
                           "pattern; pass --pattern gpt2|cl100k|o200k|REGEX")
    data = path.read_bytes()
    ranks = parse_tiktoken_ranks(data)
    if pattern in PATTERNS or pattern.endswith("_base"):
      try:
        pat_str, known = known_tiktoken_encoding(pattern)
      except KeyError:
        raise TokenizerError(f"--pattern {pattern!r} is not an encoding tiktoken knows; use "
                             f"{'|'.join(PATTERNS)} or a regular expression") from None
      # the named encoding's specials when they follow these ranks (r50k: 50256 = len(ranks))
      if not known or not 0 <= min(known.values()) - len(ranks) <= 1:
        known = {"<|endoftext|>": len(ranks)}
    else:
      pat_str, known = pattern, {"<|endoftext|>": len(ranks)}
    specials = specials or known
    return TiktokenTokenizer(data, pat_str, specials, roles=_pick_roles(specials, given))
  if path.is_file() and path.suffix == ".model":
    from llm_input.tokenizers.subword import SentencePieceTokenizer  # noqa: PLC0415

    try:
      return SentencePieceTokenizer(path.read_bytes(), "sentencepiece", {}, encode_lines=False)
    except RuntimeError as err:
      raise TokenizerError(f"{path} is not a SentencePiece model ({err})") from None
  raise TokenizerError(f"--from {str(path)!r} is none of the formats llm_input imports: "
                       + "; ".join(FORMATS))
