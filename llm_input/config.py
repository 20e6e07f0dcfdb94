"""Loading ml-collections config files (`configs/x.py[:arg]` plus `--config.a.b=value`
overrides). Nothing here knows what a section means.

Every override must name an existing field and parse as that field's type; anything else is a
`ConfigError` raised before any model is built or compiled. Each room turns its section into its
own typed config; `llm_input.train.sections.validate` builds them all and checks them before a
run folder is touched.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import pathlib
import sys
import traceback

import ml_collections

from llm_input.errors import ConfigError


def load_python_file(file: pathlib.Path, module_name: str, import_root: pathlib.Path):
  """Executes a config or sweep file as a module; `import_root` goes on sys.path first so the
  file can import its neighbours (`configs.base`). A syntax error names the file and line."""
  root = str(import_root.resolve())
  if root not in sys.path:
    sys.path.insert(0, root)
  spec = importlib.util.spec_from_file_location(module_name, file)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as err:
    raise ConfigError(f"{file}:{err.lineno}: syntax error: {err.msg}; fix the file") from None
  except ConfigError:
    raise
  except Exception as err:  # noqa: BLE001 (any error in the user's file)
    raise _error_in(file, err) from None
  return module


def _error_in(file: pathlib.Path, err: BaseException) -> ConfigError:
  """A ConfigError naming the line of `file` (the innermost frame in it) where `err` arose."""
  where = str(file)
  for frame in traceback.extract_tb(err.__traceback__):
    if pathlib.Path(frame.filename).resolve() == pathlib.Path(file).resolve():
      where = f"{file}:{frame.lineno}"
  message = str(err).splitlines()[0] if str(err) else ""
  return ConfigError(f"{where}: {type(err).__name__}: {message}; fix the file")


def call_in_file(file: pathlib.Path, module, name: str, *args):
  """`module.name(*args)` for a function of a config or sweep file: a missing function or an
  error raised inside it is one ConfigError naming the file and line."""
  function = getattr(module, name, None)
  if not callable(function):
    raise ConfigError(f"{file} defines no {name}(arg) function; add one (see configs/tiny.py or "
                      "experiments/*/sweep.py)")
  try:
    return function(*args)
  except ConfigError:
    raise
  except Exception as err:  # noqa: BLE001 (any error in the user's file)
    raise _error_in(file, err) from None


def load(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ml_collections.ConfigDict:
  """`spec` is `path/to/config.py` or `path/to/config.py:arg` (the arg goes to get_config)."""
  path, _, arg = spec.partition(":")
  file = pathlib.Path(path)
  if file.is_dir():
    presets = ", ".join(sorted(str(f) for f in file.glob("*.py") if f.name != "__init__.py")[:6])
    raise ConfigError(f"config file {path!r} is a folder; name a file in it"
                      + (f" ({presets})" if presets else ""))
  if not file.is_file():
    raise ConfigError(f"config file {path!r} does not exist (expected e.g. configs/tiny.py)")
  # Presets import `configs.base`, so the folder holding `configs/` must be importable.
  module = load_python_file(file, f"_llm_input_config_{file.stem}", file.resolve().parent.parent)
  accepted = tuple(getattr(module, "ARGS", ()))
  if arg and arg not in accepted:
    raise ConfigError(f"config file {path!r} has no preset argument {arg!r}; accepted: "
                      f"{', '.join(accepted) or 'none (use the file without :ARG)'}")
  cfg = call_in_file(file, module, "get_config", *([arg] if arg else []))
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


def flatten(tree: dict | None, prefix: str = "", sep: str = ".") -> dict:
  """{"model.d_model": 768, ...}: a nested dict (a config's JSON dict, a parameter tree with
  sep="/"), one entry per leaf."""
  out = {}
  for key, value in (tree or {}).items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, name + sep, sep))
    else:
      out[name] = value
  return out


def typed_section(cls, section, name: str, **given):
  """The dataclass `cls` from the config section `name` whose fields have its field names, so
  a room's typed config lists no field by hand: `given` supplies the fields that come from
  elsewhere (the run's seed) or need converting (a JSON list to a tuple). A section field the
  dataclass lacks is an error (every config field is read somewhere); a dataclass field the
  section lacks takes its default (a config written before the field existed)."""
  values = section.to_dict() if isinstance(section, ml_collections.ConfigDict) else dict(section)
  names = {f.name for f in dataclasses.fields(cls)}
  unread = sorted(set(values) - names - set(given))
  if unread:
    raise ConfigError(f"{name}: field(s) {unread} are read by nothing ({cls.__name__} reads "
                      f"{sorted(names - set(given))} from it); remove them from the config")
  return cls(**{**{k: v for k, v in values.items() if k in names}, **given})
