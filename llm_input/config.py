"""Loading ml-collections config files: `configs/x.py[:arg]` plus `--config.a.b=value` overrides.

Every override must name an existing field and parse as that field's type; anything else is a
`ConfigError` raised before any model is built or compiled.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import pathlib
import sys

import ml_collections

from llm_input.model.config import ConfigError, ModelConfig


def load(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """`spec` is `path/to/config.py` or `path/to/config.py:arg` (the arg goes to get_config)."""
  path, _, arg = spec.partition(":")
  file = pathlib.Path(path)
  if not file.is_file():
    raise ConfigError(f"config file {path!r} does not exist (expected e.g. configs/tiny.py)")
  # Presets import `configs.base`, so the folder holding `configs/` must be importable.
  root = str(file.resolve().parent.parent)
  if root not in sys.path:
    sys.path.insert(0, root)
  module_spec = importlib.util.spec_from_file_location(f"_llm_input_config_{file.stem}", file)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} has no get_config(arg) function")
  cfg = module.get_config(arg) if arg else module.get_config()
  cfg = ml_collections.ConfigDict(cfg)
  for item in overrides:
    apply_override(cfg, item)
  return cfg


def load_like(cfg: ml_collections.ConfigDict, overrides) -> ml_collections.ConfigDict:
  """A copy of `cfg` with overrides applied (same checks as on the command line)."""
  copy = ml_collections.ConfigDict(cfg.to_dict())
  for item in overrides:
    apply_override(copy, item)
  return copy


def apply_override(cfg: ml_collections.ConfigDict, item: str) -> None:
  """Applies `a.b=value` (a leading `--config.` is accepted) with the field's own type."""
  text = item[len("--config."):] if item.startswith("--config.") else item
  text = text[len("config."):] if text.startswith("config.") else text
  if "=" not in text:
    raise ConfigError(f"override {item!r} must look like --config.model.d_model=1024")
  key, raw = text.split("=", 1)
  parts = key.split(".")
  node = cfg
  for depth, part in enumerate(parts):
    fields = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
    if part not in fields:
      prefix = ".".join(parts[:depth])
      close = difflib.get_close_matches(part, fields, n=3)
      hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(fields))}"
      raise ConfigError(f"unknown config field {'.'.join(parts[:depth + 1])!r}"
                        f" (in {prefix or 'the top level'}){hint}")
    if depth < len(parts) - 1:
      node = node[part]
  old = node[parts[-1]]
  node[parts[-1]] = _parse_like(old, raw, key)


def _parse_like(old, raw: str, key: str):
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = raw  # a bare string such as rope or bpe
  if old is None or value is None:
    return value
  if isinstance(old, bool):
    if isinstance(value, bool):
      return value
    if str(raw).lower() in ("true", "false"):
      return str(raw).lower() == "true"
  elif isinstance(old, int):
    if isinstance(value, int) and not isinstance(value, bool):
      return value
  elif isinstance(old, float):
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return float(value)
  elif isinstance(old, str):
    return raw
  elif isinstance(old, (tuple, list)) and isinstance(value, (tuple, list)):
    return type(old)(value)
  raise ConfigError(f"config field {key!r} is a {type(old).__name__} (now {old!r}); "
                    f"cannot set it to {raw!r}")


def model_config(cfg: ml_collections.ConfigDict, vocab_size: int | None = None) -> ModelConfig:
  """The typed model config: the `model` section plus the data's sequence length.

  `model.vocab_size = 0` takes the tokenizer's size: `vocab_size` when a trained tokenizer is
  known, else what `tokenizer.kind/vocab_size` will produce (259 for byte).
  """
  values = cfg.model.to_dict()
  values["seq_len"] = int(cfg.data.seq_len)
  tokenizer_size = vocab_size
  if tokenizer_size is None:
    tokenizer_size = 259 if cfg.tokenizer.kind == "byte" else int(cfg.tokenizer.vocab_size)
  if values["vocab_size"] == 0:
    values["vocab_size"] = tokenizer_size
  elif vocab_size is not None and values["vocab_size"] < vocab_size:
    raise ConfigError(f"model.vocab_size={values['vocab_size']} is smaller than the tokenizer's "
                      f"{vocab_size} ids; set model.vocab_size=0 to follow the tokenizer")
  return ModelConfig.from_dict(values)
