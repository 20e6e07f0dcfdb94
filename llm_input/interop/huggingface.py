"""Hugging Face checkpoints in and out: `import_hf` (a local HF folder -> a run folder) and
`export_hf` (a run folder -> a folder `transformers.AutoModelForCausalLM.from_pretrained` reads).

Supported architectures, each a setting of the one model (`llm_input.model`):
  GPT2LMHeadModel     learned positions, LayerNorm, GELU (tanh), biases, tied head
  LlamaForCausalLM    RoPE (rotate-half pairs, as `positions.apply_rope`), RMSNorm, SwiGLU, no
                      biases, grouped K/V heads, tied or untied head
  MistralForCausalLM  the same as Llama (within its sliding window)
  Qwen2ForCausalLM    Llama with biases on Q, K and V (`model.qkv_bias`)

The mapping is a table (`_layout`): each of our parameters, the HF tensor it comes from and
how its axes are laid out there (torch Linear weights are (out, in); GPT-2's Conv1D weights
are (in, out); GPT-2 packs Q, K, V in one `c_attn`). The same table drives import, export and
the shape check made before anything is read. Hugging Face's RoPE pairs dimension i with
i + d_head/2 ("rotate half"), which is the pairing `apply_rope` uses, so Q and K weights are
copied without a permutation.

Tensors are read one at a time from the memory-mapped safetensors files and written into
the stacked (layers, ...) arrays the scanned model keeps, so an import holds the model about
once. Parameters are float32 in this project; a bfloat16 checkpoint is widened exactly and its
dtype recorded, and `export_hf` writes it back in that dtype by default (bitwise the same).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import shutil
import tempfile
import time
from collections.abc import Callable

import numpy as np

from llm_input import config as config_lib
from llm_input.errors import UserError
from llm_input.model.config import ModelConfig


class HFError(UserError):
  label = "hugging face"


ARCHITECTURES = {"GPT2LMHeadModel": "gpt2", "LlamaForCausalLM": "llama",
                 "MistralForCausalLM": "mistral", "Qwen2ForCausalLM": "qwen2"}
SUPPORTED = ", ".join(ARCHITECTURES)
DTYPES = {"F32": "float32", "BF16": "bfloat16"}
SAFETENSORS = "model.safetensors"
INDEX = "model.safetensors.index.json"


# -- the config -----------------------------------------------------------------------------
def read_hf_config(folder: pathlib.Path) -> dict:
  folder = pathlib.Path(folder)
  if not folder.is_dir():
    raise HFError(f"--from {str(folder)!r} is not a folder; give a local Hugging Face model folder "
                  "(config.json + model.safetensors, as `huggingface-cli download` leaves it)")
  path = folder / "config.json"
  if not path.is_file():
    raise HFError(f"{folder} has no config.json, so it is not a Hugging Face model folder; give the "
                  "folder that holds config.json and model.safetensors")
  try:
    hf = json.loads(path.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError) as err:
    raise HFError(f"{path} is not valid JSON ({err}); download the model again") from None
  if not isinstance(hf, dict):
    raise HFError(f"{path} is not a model config (a JSON object was expected)")
  return hf


def architecture(hf: dict, where) -> str:
  names = hf.get("architectures") or []
  name = names[0] if names else None
  if name not in ARCHITECTURES:
    raise HFError(f"{where}: architecture {name or hf.get('model_type')!r} is not supported; "
                  f"llm_input imports {SUPPORTED}")
  return name


def _rope_base(hf: dict, where) -> float:
  params = hf.get("rope_parameters") or {}
  scaling = hf.get("rope_scaling") or {}
  kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
  if kind != "default":
    raise HFError(f"{where}: rope_type {kind!r} (RoPE scaling) is not supported; llm_input's RoPE is "
                  "the default rotary embedding")
  return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


@dataclasses.dataclass(frozen=True)
class Imported:
  """What a HF config means here: the model, the context it was trained on, the family."""

  arch: str
  family: str
  fields: dict  # ModelConfig fields
  context: int  # data.seq_len of the run folder
  add_bos: bool


def model_fields(hf: dict, where) -> Imported:
  """The model config fields a HF config.json describes; anything this model cannot compute
  exactly is refused, naming the field."""
  arch = architecture(hf, where)
  family = ARCHITECTURES[arch]

  def need(cond, field, message):
    if not cond:
      raise HFError(f"{where}: {field}={hf.get(field)!r}: {message}")

  if family == "gpt2":
    need(hf.get("activation_function", "gelu_new") in ("gelu_new", "gelu_pytorch_tanh"),
         "activation_function", "only the tanh GELU (gelu_new) is supported")
    need(hf.get("scale_attn_weights", True), "scale_attn_weights",
         "attention scores are always divided by sqrt(d_head) here")
    need(not hf.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx",
         "per-layer score scaling is not supported")
    d = int(hf["n_embd"])
    fields = dict(vocab_size=int(hf["vocab_size"]), d_model=d, num_layers=int(hf["n_layer"]),
                  num_heads=int(hf["n_head"]), d_mlp=int(hf.get("n_inner") or 4 * d), mlp="gelu",
                  positions="learned", max_len=int(hf["n_positions"]), norm="layernorm",
                  norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)), use_bias=True,
                  tie_embeddings=bool(hf.get("tie_word_embeddings", True)))
    context, add_bos = int(hf["n_positions"]), False
  else:
    need(hf.get("hidden_act", "silu") == "silu", "hidden_act", "only SwiGLU (silu) is supported")
    need(not hf.get("attention_bias", False), "attention_bias",
         "biases on every attention projection are not supported (Qwen2's Q/K/V biases are)")
    need(not hf.get("mlp_bias", False), "mlp_bias", "MLP biases without biases elsewhere are not supported")
    d, heads = int(hf["hidden_size"]), int(hf["num_attention_heads"])
    need(hf.get("head_dim") in (None, d // heads), "head_dim",
         f"must be hidden_size / num_attention_heads = {d // heads} here")
    if family == "qwen2":
      need(not hf.get("use_sliding_window", False), "use_sliding_window",
           "sliding-window attention is not supported")
    context = int(hf.get("max_position_embeddings", 2048))
    window = hf.get("sliding_window")
    if family == "mistral" and window:
      context = min(context, int(window))  # within the window the two attentions are the same
    fields = dict(vocab_size=int(hf["vocab_size"]), d_model=d,
                  num_layers=int(hf["num_hidden_layers"]), num_heads=heads,
                  num_kv_heads=int(hf.get("num_key_value_heads") or heads),
                  d_mlp=int(hf["intermediate_size"]), mlp="swiglu", positions="rope",
                  max_len=context, rope_base=_rope_base(hf, where), norm="rmsnorm",
                  norm_eps=float(hf.get("rms_norm_eps", 1e-6)), use_bias=False,
                  qkv_bias=family == "qwen2",
                  tie_embeddings=bool(hf.get("tie_word_embeddings", family == "qwen2")))
    add_bos = family in ("llama", "mistral")
  try:
    ModelConfig.from_dict(fields)
  except UserError as err:
    raise HFError(f"{where}: {err}") from None
  return Imported(arch, family, fields, context, add_bos)


# -- the layout: our parameters and their HF tensors ---------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
  ours: str  # our parameter path, "blocks/attention/q_kernel"
  hf: str  # the HF tensor, "{p}h.{i}.attn.c_attn.weight" ({p}: the model prefix, {i}: layer)
  layout: str  # same | flat | linear (torch Linear: (out, in)) | conv (GPT-2 Conv1D: (in, out))
  split: int = 1  # linear/conv: our leading axes that are the input side
  part: tuple[int, int] | None = None  # (k, n): the k-th of n equal parts along the HF last axis

  @property
  def layered(self) -> bool:
    return "{i}" in self.hf

  def hf_shape(self, ours: tuple[int, ...]) -> tuple[int, ...]:
    inner, outer = math.prod(ours[:self.split]), math.prod(ours[self.split:])
    shape = {"same": tuple(ours), "flat": (math.prod(ours),), "linear": (outer, inner),
             "conv": (inner, outer)}[self.layout]
    if self.part:
      shape = shape[:-1] + (shape[-1] * self.part[1],)
    return shape

  def to_ours(self, array: np.ndarray, ours: tuple[int, ...]) -> np.ndarray:
    if self.part:
      k, n = self.part
      size = array.shape[-1] // n
      array = array[..., k * size:(k + 1) * size]
    if self.layout == "linear":
      array = array.T
    return array.reshape(ours)

  def to_hf(self, array: np.ndarray) -> np.ndarray:
    """Our array (one layer) in this entry's HF layout (its part only, for packed tensors)."""
    inner = math.prod(array.shape[:self.split])
    if self.layout == "same":
      return array
    if self.layout == "flat":
      return array.reshape(-1)
    array = array.reshape(inner, -1)
    return array.T if self.layout == "linear" else array


def _layout(family: str, m: ModelConfig) -> list[Entry]:
  e = Entry
  if family == "gpt2":
    table = [e("embedding/table", "{p}wte.weight", "same"),
             e("positions/table", "{p}wpe.weight", "same"),
             e("blocks/attention_norm/scale", "{p}h.{i}.ln_1.weight", "same"),
             e("blocks/attention_norm/bias", "{p}h.{i}.ln_1.bias", "same")]
    for k, name in enumerate("qkv"):
      table += [e(f"blocks/attention/{name}_kernel", "{p}h.{i}.attn.c_attn.weight", "conv", 1, (k, 3)),
                e(f"blocks/attention/{name}_bias", "{p}h.{i}.attn.c_attn.bias", "flat", 1, (k, 3))]
    table += [e("blocks/attention/o_kernel", "{p}h.{i}.attn.c_proj.weight", "conv", 2),
              e("blocks/attention/o_bias", "{p}h.{i}.attn.c_proj.bias", "same"),
              e("blocks/mlp_norm/scale", "{p}h.{i}.ln_2.weight", "same"),
              e("blocks/mlp_norm/bias", "{p}h.{i}.ln_2.bias", "same"),
              e("blocks/mlp/up_kernel", "{p}h.{i}.mlp.c_fc.weight", "conv"),
              e("blocks/mlp/up_bias", "{p}h.{i}.mlp.c_fc.bias", "same"),
              e("blocks/mlp/down_kernel", "{p}h.{i}.mlp.c_proj.weight", "conv"),
              e("blocks/mlp/down_bias", "{p}h.{i}.mlp.c_proj.bias", "same"),
              e("final_norm/scale", "{p}ln_f.weight", "same"),
              e("final_norm/bias", "{p}ln_f.bias", "same")]
  else:
    table = [e("embedding/table", "{p}embed_tokens.weight", "same"),
             e("blocks/attention_norm/scale", "{p}layers.{i}.input_layernorm.weight", "same")]
    for name in "qkv":
      table.append(e(f"blocks/attention/{name}_kernel", f"{{p}}layers.{{i}}.self_attn.{name}_proj.weight", "linear"))
      if m.has_qkv_bias:
        table.append(e(f"blocks/attention/{name}_bias", f"{{p}}layers.{{i}}.self_attn.{name}_proj.bias", "flat"))
    table += [e("blocks/attention/o_kernel", "{p}layers.{i}.self_attn.o_proj.weight", "linear", 2),
              e("blocks/mlp_norm/scale", "{p}layers.{i}.post_attention_layernorm.weight", "same"),
              e("blocks/mlp/gate_kernel", "{p}layers.{i}.mlp.gate_proj.weight", "linear"),
              e("blocks/mlp/up_kernel", "{p}layers.{i}.mlp.up_proj.weight", "linear"),
              e("blocks/mlp/down_kernel", "{p}layers.{i}.mlp.down_proj.weight", "linear"),
              e("final_norm/scale", "{p}norm.weight", "same")]
  if not m.tie_embeddings:
    table.append(e("embedding/head", "lm_head.weight", "linear"))
  return table


PREFIXES = {"gpt2": "transformer.", "llama": "model.", "mistral": "model.", "qwen2": "model."}
# Buffers some files carry that are not parameters (GPT-2's causal mask, old rotary tables).
_BUFFERS = (".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq")


def _our_shapes(m: ModelConfig) -> dict[str, tuple[int, ...]]:
  from llm_input.model import transformer  # noqa: PLC0415

  return {name.replace(".", "/"): shape for name, shape, _, _ in transformer.param_table(m)}


def _names(entry: Entry, prefix: str, layers: int) -> list[str]:
  if entry.layered:
    return [entry.hf.format(p=prefix, i=i) for i in range(layers)]
  return [entry.hf.format(p=prefix)]


# -- reading safetensors --------------------------------------------------------------------
class Tensors:
  """The tensors of a HF folder (one model.safetensors or a sharded index), memory-mapped and
  read one at a time."""

  def __init__(self, folder: pathlib.Path):
    from safetensors import safe_open  # noqa: PLC0415

    self.folder = pathlib.Path(folder)
    index = self.folder / INDEX
    single = self.folder / SAFETENSORS
    if index.is_file():
      try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
      except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise HFError(f"{index} is not a safetensors index ({type(err).__name__}: {err}); download "
                      "the model again") from None
      files = sorted(set(weight_map.values()))
      gone = [f for f in files if not (self.folder / f).is_file()]
      if gone:
        raise HFError(f"{index} names {len(gone)} file(s) that are not in {self.folder}: "
                      f"{', '.join(gone[:4])}; finish the download (every shard is needed)")
    elif single.is_file():
      weight_map, files = None, [SAFETENSORS]
    else:
      other = sorted(p.name for p in self.folder.glob("*.bin")) + sorted(
          p.name for p in self.folder.glob("*.pth"))
      hint = (f" (it has {', '.join(other[:3])}: torch pickles, which llm_input does not read; "
              "save the model with `save_pretrained(..., safe_serialization=True)` first)" if other else "")
      raise HFError(f"{self.folder} has no {SAFETENSORS} or {INDEX}{hint}")
    self._files = {}
    for name in files:
      try:
        self._files[name] = safe_open(str(self.folder / name), framework="np")
      except Exception as err:  # noqa: BLE001 (safetensors raises its own SafetensorError)
        raise HFError(f"{self.folder / name} is not a readable safetensors file ({err}); download "
                      "it again") from None
    self.where = {}
    for name, handle in self._files.items():
      for key in handle.keys():
        self.where[key] = name
    if weight_map is not None:
      for key, name in weight_map.items():
        if self.where.get(key) != name:
          raise HFError(f"{index} says tensor {key!r} is in {name}, but it is not there; the "
                        "shards and their index disagree: download the model again")

  def names(self) -> set[str]:
    return set(self.where)

  def close(self) -> None:
    """Unmaps the files: their pages, read once, stop counting toward this process's memory."""
    self._files.clear()

  def shape(self, name: str) -> tuple[int, ...]:
    return tuple(self._files[self.where[name]].get_slice(name).get_shape())

  def dtype(self, name: str) -> str:
    return self._files[self.where[name]].get_slice(name).get_dtype()

  def get(self, name: str) -> np.ndarray:
    return self._files[self.where[name]].get_tensor(name)

  def file_of(self, name: str) -> str:
    return self.where[name]


def _prefix(family: str, names: set[str]) -> str:
  prefix = PREFIXES[family]
  probe = "wte.weight" if family == "gpt2" else "embed_tokens.weight"
  return prefix if prefix + probe in names else ""


def check_tensors(tensors: Tensors, family: str, m: ModelConfig) -> tuple[str, str]:
  """Every tensor the mapping needs is there with the shape the config implies, and nothing
  else is (a tensor left over would be a weight silently dropped). Returns (prefix, dtype)."""
  names = tensors.names()
  prefix = _prefix(family, names)
  shapes = _our_shapes(m)
  needed: dict[str, tuple[int, ...]] = {}
  for entry in _layout(family, m):
    ours = shapes[entry.ours]
    per_layer = ours[1:] if entry.layered else ours
    for name in _names(entry, prefix, m.num_layers):
      needed[name] = entry.hf_shape(per_layer)
  missing = sorted(n for n in needed if n not in names)
  if missing:
    raise HFError(f"{tensors.folder}: tensor {missing[0]!r} is missing"
                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                  + " but config.json implies it; the weights and the config disagree, or the "
                  "download is incomplete")
  for name, want in needed.items():
    have = tensors.shape(name)
    if have != want:
      raise HFError(f"{tensors.folder / tensors.file_of(name)}: tensor {name!r} has shape "
                    f"{list(have)} but config.json implies {list(want)}; the weights and the config "
                    "disagree")
  extra = sorted(n for n in names - set(needed)
                 if not n.endswith(_BUFFERS) and not (n == "lm_head.weight" and m.tie_embeddings))
  if extra:
    raise HFError(f"{tensors.folder}: tensor(s) {', '.join(extra[:4])} are not part of a "
                  f"{family} model with this config.json; refusing to drop them silently")
  dtypes = sorted({tensors.dtype(n) for n in needed})
  unknown = [d for d in dtypes if d not in DTYPES]
  if unknown or len(dtypes) != 1:
    raise HFError(f"{tensors.folder}: weights stored as {', '.join(dtypes)}; llm_input imports "
                  "float32 or bfloat16 checkpoints (one dtype for all)")
  return prefix, DTYPES[dtypes[0]]


def read_params(tensors: Tensors, family: str, m: ModelConfig, prefix: str) -> dict:
  """Our nested parameter dict (float32 numpy), filled one HF tensor at a time."""
  shapes = _our_shapes(m)
  flat: dict[str, np.ndarray] = {}
  cache: tuple[str, np.ndarray] | None = None  # packed c_attn is read once for q, k and v
  for entry in _layout(family, m):
    ours = shapes[entry.ours]
    out = np.empty(ours, np.float32)
    per_layer = ours[1:] if entry.layered else ours
    for i, name in enumerate(_names(entry, prefix, m.num_layers)):
      if cache is None or cache[0] != name:
        cache = (name, tensors.get(name))
      value = entry.to_ours(cache[1], per_layer)
      if entry.layered:
        out[i] = value
      else:
        out[...] = value
    flat[entry.ours] = out
  cache = None
  return _nest(flat)


def _nest(flat: dict[str, np.ndarray]) -> dict:
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    *parents, leaf = path.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[leaf] = value
  return tree


def _flatten(params: dict) -> dict[str, np.ndarray]:
  """{"blocks/attention/q_kernel": array, ...}."""
  return config_lib.flatten(params, sep="/")


def hf_tensors(params: dict, family: str, m: ModelConfig, dtype: str = "float32") -> dict[str, np.ndarray]:
  """Our parameters as the HF tensors of `family` (names with the standard prefix)."""
  import ml_dtypes  # noqa: PLC0415 (a jax dependency)

  np_dtype = np.float32 if dtype == "float32" else ml_dtypes.bfloat16
  flat = {k: np.asarray(v) for k, v in _flatten(params).items()}
  parts: dict[str, list] = {}
  for entry in _layout(family, m):
    value = flat[entry.ours]
    names = _names(entry, PREFIXES[family], m.num_layers)
    for i, name in enumerate(names):
      piece = entry.to_hf(value[i] if entry.layered else value)
      slots = parts.setdefault(name, [None] * (entry.part[1] if entry.part else 1))
      slots[entry.part[0] if entry.part else 0] = piece
  return {name: np.ascontiguousarray(
      (np.concatenate(pieces, axis=-1) if len(pieces) > 1 else pieces[0]).astype(np_dtype))
      for name, pieces in sorted(parts.items())}


# -- import ---------------------------------------------------------------------------------
def _base_config_path() -> pathlib.Path:
  return pathlib.Path(__file__).resolve().parents[2] / "configs" / "base.py"


def _fresh_out(out: pathlib.Path) -> None:
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise HFError(f"--out {str(out)!r} already exists and is not empty; choose a new folder")


def _temporary_sibling(out: pathlib.Path) -> pathlib.Path:
  out.parent.mkdir(parents=True, exist_ok=True)
  return pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))


def _publish(tmp: pathlib.Path, out: pathlib.Path) -> None:
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(tmp, 0o777 & ~umask)
  if out.exists():
    out.rmdir()  # empty (checked before any work)
  os.replace(tmp, out)


def import_hf(source, out, overrides=(), tokenizer_path=None, say: Callable = print) -> pathlib.Path:
  """Writes run folder `out` from the HF folder `source`: config.json (configs/base.py with the
  model section from HF's config.json, data.seq_len = its context, then `overrides`), the
  tokenizer, one checkpoint (step 0, with checksums) and run.json naming the source.

  Everything is checked (config, tokenizer, every tensor's name and shape) before the first
  byte is written; the folder appears whole or not at all."""
  from llm_input import tokenizers  # noqa: PLC0415
  from llm_input.errors import TokenizerError  # noqa: PLC0415
  from llm_input.tokenizers import pretrained  # noqa: PLC0415
  from llm_input.train import sections as sections_lib  # noqa: PLC0415

  start = time.perf_counter()
  source, out = pathlib.Path(source), pathlib.Path(out)
  _fresh_out(out)
  hf = read_hf_config(source)
  spec = model_fields(hf, source / "config.json")
  m = ModelConfig.from_dict(spec.fields)
  tensors = Tensors(source)
  prefix, dtype = check_tensors(tensors, spec.family, m)
  try:
    tokenizer = tokenizers.import_tokenizer(tokenizer_path or source)
  except TokenizerError as err:
    raise HFError(f"the tokenizer of {tokenizer_path or source}: {err}"
                  + ("" if tokenizer_path else "; give one with --tokenizer PATH")) from None
  if tokenizer.vocab_size > m.vocab_size:
    raise HFError(f"the tokenizer has {tokenizer.vocab_size:,} ids but the model only "
                  f"{m.vocab_size:,} embedding rows; they are not one model's")
  add_bos = bool(pretrained.tokenizer_config(source).get("add_bos_token", spec.add_bos))
  cfg = config_lib.load(str(_base_config_path()))
  for key, value in spec.fields.items():
    cfg.model[key] = value
  cfg.data.seq_len = spec.context
  cfg.data.add_bos = add_bos
  cfg.data.add_eos = True
  for item in overrides:
    config_lib.apply_override(cfg, item)
  sections_lib.validate(cfg, device_count=1)
  if sections_lib.model_config(cfg, tokenizer.vocab_size) != m:
    raise HFError("the overrides change the model section; an imported model is what its "
                  "config.json says (override data, sample or other sections only)")

  tmp = _temporary_sibling(out)
  try:
    cfg.tokenizer.path = str(out.resolve() / "tokenizer")
    params = read_params(tensors, spec.family, m, prefix)
    files = sorted(set(tensors.where.values()))
    tensors.close()
    _write_run(tmp, cfg, tokenizer, params, {
        "imported": {"from": str(source.resolve()), "architecture": spec.arch,
                     "family": spec.family, "dtype": dtype,
                     "files": files}})
    _publish(tmp, out)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  seconds = time.perf_counter() - start
  say(f"imported {spec.arch} ({count(params):,} parameters, {dtype}) from {source} -> {out} "
      f"in {seconds:.1f} s; tokenizer {tokenizer.kind} ({tokenizer.vocab_size:,} ids)")
  return out


def count(params: dict) -> int:
  return sum(int(np.asarray(v).size) for v in _flatten(params).values())


def _write_run(folder: pathlib.Path, cfg, tokenizer, params: dict, record: dict) -> None:
  """A run folder as training leaves it: config.json, tokenizer/, run.json and a verified
  checkpoint at step 0 (no optimizer state: the analysis restores parameters alone)."""
  from llm_input.runs import RunFolder  # noqa: PLC0415
  from llm_input.train import checkpoint as checkpoint_lib  # noqa: PLC0415

  run = RunFolder(folder)
  tokenizer.save(run.tokenizer_dir)
  run.record_tokenizer()
  run.write_run_json(record)
  state = {"params": params}
  saver = checkpoint_lib.Checkpointer(run.checkpoints_dir, checkpoint_lib.CheckpointConfig(
      every_steps=1, every_minutes=0, keep=1, async_save=False))
  try:
    saver.save(0, state, {}, {"param_shapes": checkpoint_lib.param_shapes(state), **record},
               force=True, on_host=True)
  finally:
    saver.close()
  run.write_config(cfg)


# -- export ---------------------------------------------------------------------------------
def family_of(m: ModelConfig) -> str:
  """The HF architecture family of a model config, or HFError naming the field that has no
  Hugging Face equivalent."""
  def refuse(field, why):
    raise HFError(f"model.{field}={getattr(m, field)!r} has no Hugging Face equivalent: {why}; "
                  "nothing was written")

  if not m.causal:
    refuse("causal", "causal language models only")
  if m.scale_embeddings:
    refuse("scale_embeddings", "GPT-2 and Llama add unscaled token vectors")
  if m.attention_scale != "sqrt":
    refuse("attention_scale", "GPT-2 and Llama divide attention scores by sqrt(d_head)")
  if m.positions not in ("learned", "rope"):
    refuse("positions", "GPT-2 uses learned positions and Llama RoPE")
  if m.positions == "learned":
    if m.norm != "layernorm":
      refuse("norm", "GPT-2 (learned positions) uses layernorm")
    if m.mlp != "gelu":
      refuse("mlp", "GPT-2 (learned positions) uses gelu")
    if not m.use_bias or not m.has_qkv_bias:
      refuse("use_bias", "GPT-2 (learned positions) has biases in every linear layer")
    if m.kv_heads != m.num_heads:
      refuse("num_kv_heads", "GPT-2 (learned positions) has one K/V head per query head")
    return "gpt2"
  if m.norm != "rmsnorm":
    refuse("norm", "Llama (RoPE) uses rmsnorm")
  if m.mlp != "swiglu":
    refuse("mlp", "Llama (RoPE) uses swiglu")
  if m.use_bias:
    refuse("use_bias", "Llama has no biases (Qwen2 has Q/K/V biases only: model.use_bias=False, "
           "model.qkv_bias=True)")
  return "qwen2" if m.has_qkv_bias else "llama"


ARCH_OF = {family: arch for arch, family in ARCHITECTURES.items()}
EXPORT_TOKENIZERS = ("hf (imported)", "byte")


def hf_config(family: str, m: ModelConfig, context: int, specials: dict, dtype: str) -> dict:
  """config.json as `transformers` writes it for this architecture (less its version)."""
  common = {"architectures": [ARCH_OF[family]], "bos_token_id": specials.get("bos"),
            "eos_token_id": specials.get("eos"), "pad_token_id": specials.get("pad"),
            "dtype": dtype, "initializer_range": m.init_std,
            "tie_word_embeddings": m.tie_embeddings, "use_cache": True,
            "vocab_size": m.vocab_size}
  if family == "gpt2":
    return {**common, "activation_function": "gelu_new", "add_cross_attention": False,
            "attn_pdrop": 0.0, "embd_pdrop": 0.0, "resid_pdrop": 0.0,
            "layer_norm_epsilon": m.norm_eps, "model_type": "gpt2", "n_embd": m.d_model,
            "n_head": m.num_heads, "n_inner": None if m.mlp_width == 4 * m.d_model else m.mlp_width, "n_layer": m.num_layers,
            "n_positions": m.max_len, "reorder_and_upcast_attn": False,
            "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
            "summary_activation": None, "summary_first_dropout": 0.0,
            "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True}
  out = {**common, "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": m.d_model,
         "intermediate_size": m.mlp_width, "max_position_embeddings": context,
         "model_type": family, "num_attention_heads": m.num_heads,
         "num_hidden_layers": m.num_layers, "num_key_value_heads": m.kv_heads,
         "rms_norm_eps": m.norm_eps,
         "rope_parameters": {"rope_theta": m.rope_base, "rope_type": "default"}}
  if family == "llama":
    out.update({"attention_bias": False, "head_dim": m.d_head, "mlp_bias": False, "pretraining_tp": 1})
  elif family == "mistral":  # no window here: exact for sequences up to max_position_embeddings
    out.update({"head_dim": m.d_head, "sliding_window": None})
  else:  # qwen2
    out.update({"layer_types": ["full_attention"] * m.num_layers, "max_window_layers": m.num_layers,
                "sliding_window": None, "use_sliding_window": False})
  return dict(sorted(out.items()))


def byte_tokenizer_json() -> str:
  """This project's byte tokenizer (<pad> <s> </s>, then byte b = id b + 3) as a Hugging Face
  tokenizer.json, built with `tokenizers`: a byte-level BPE without merges."""
  import tokenizers as hf  # noqa: PLC0415
  from tokenizers import decoders, pre_tokenizers  # noqa: PLC0415

  from llm_input.tokenizers.base import SPECIAL_PIECES  # noqa: PLC0415
  from llm_input.tokenizers.char import ByteTokenizer  # noqa: PLC0415
  from llm_input.tokenizers.pretrained import _byte_level_alphabet  # noqa: PLC0415

  offset = ByteTokenizer.num_special_ids
  vocab = {piece: i for i, piece in enumerate(SPECIAL_PIECES[:offset])}
  vocab.update({char: byte + offset for char, byte in _byte_level_alphabet().items()})
  tokenizer = hf.Tokenizer(hf.models.BPE(vocab=vocab, merges=[]))
  tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
  tokenizer.decoder = decoders.ByteLevel()
  tokenizer.add_special_tokens([hf.AddedToken(p, special=True, normalized=False)
                                for p in SPECIAL_PIECES[:offset]])
  return tokenizer.to_str()


def _tokenizer_files(tokenizer) -> tuple[str, dict[str, str]]:
  """(tokenizer.json text, {role: token}) for the run's tokenizer, or HFError."""
  from llm_input.tokenizers.base import SPECIAL_PIECES  # noqa: PLC0415

  if tokenizer.kind == "hf":
    text = tokenizer.json_text
    names = {role: tokenizer.id_to_piece(i) for role, i in tokenizer.special_ids.items()}
  elif tokenizer.kind == "byte":
    text = byte_tokenizer_json()
    names = {role: SPECIAL_PIECES[i] for role, i in tokenizer.special_ids.items() if i is not None}
  else:
    raise HFError(f"tokenizer.kind={tokenizer.kind!r} has no Hugging Face tokenizer.json writer here; "
                  f"export supports {', '.join(EXPORT_TOKENIZERS)} tokenizers; nothing was written")
  return text, names


def export_hf(workdir, out, step: int | None = None, dtype: str | None = None,
              say: Callable = print) -> pathlib.Path:
  """Writes `out`: config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
  generation_config.json, such that `AutoModelForCausalLM.from_pretrained(out)` computes the
  run's logits. Refuses (before writing) a run without a Hugging Face equivalent."""
  from safetensors.numpy import save_file  # noqa: PLC0415

  from llm_input import tokenizers  # noqa: PLC0415
  from llm_input.model.config import context_length  # noqa: PLC0415
  from llm_input.runs import RunFolder  # noqa: PLC0415
  from llm_input.train import reload as run_lib  # noqa: PLC0415
  from llm_input.train import sections as sections_lib  # noqa: PLC0415

  out = pathlib.Path(out)
  _fresh_out(out)
  if dtype is not None and dtype not in DTYPES.values():
    raise HFError(f"--dtype {dtype!r}: choose float32 or bfloat16")
  # Refusals first, from the config and the tokenizer alone (no parameters read yet).
  folder = RunFolder(workdir)
  cfg = folder.read_config()
  if not folder.checkpoint_steps():
    raise HFError(f"{folder} has no checkpoints yet; train it first")
  tokenizer = tokenizers.load(folder.tokenizer_dir)
  m = sections_lib.model_config(cfg, tokenizer.vocab_size)
  family = family_of(m)
  text, names = _tokenizer_files(tokenizer)
  imported = folder.imported()
  if family == "llama" and imported.get("family") == "mistral":
    family = "mistral"  # the same computation; written back as the architecture it came as
  dtype = dtype or imported.get("dtype", "float32")
  loaded = run_lib.load_run(workdir, step=step)
  context = context_length(m, loaded.config.data.seq_len)
  specials = loaded.tokenizer.special_ids
  tensors = hf_tensors(jax_to_numpy(loaded.params), family, m, dtype)
  tmp = _temporary_sibling(out)
  try:
    save_file(tensors, str(tmp / SAFETENSORS), metadata={"format": "pt"})
    config = hf_config(family, m, context, specials, dtype)
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (tmp / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": specials.get("bos"), "eos_token_id": specials.get("eos"),
         "pad_token_id": specials.get("pad")}, indent=2) + "\n", encoding="utf-8")
    (tmp / "tokenizer.json").write_text(text, encoding="utf-8")
    tok_config = {f"{role}_token": token for role, token in sorted(names.items())}
    tok_config.update({"add_bos_token": bool(loaded.config.data.add_bos),
                       "model_max_length": context, "tokenizer_class": "PreTrainedTokenizerFast"})
    (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n",
                                               encoding="utf-8")
    _publish(tmp, out)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  say(f"exported {loaded.folder} (step {loaded.step}) as {ARCH_OF[family]} ({dtype}, "
      f"{count(loaded.params):,} parameters) -> {out}")
  return out


def jax_to_numpy(params: dict) -> dict:
  import jax  # noqa: PLC0415

  return jax.tree.map(np.asarray, jax.device_get(params))


# -- the logit check ------------------------------------------------------------------------
CHECK_SENTENCES = ("Hello world.", "The bank by the river",
                   "The king and the queen walked by the river at night.")


def check_hf(workdir, source, sentences=None, tolerance: float = 1e-4) -> dict:
  """The run's logits against `transformers`' for the HF folder `source`, on a few sentences:
  the largest absolute and relative difference, the KL divergence KL(HF || ours) per token
  (nats) and how often the two agree on the most likely next token. Needs torch and
  transformers (`pip install -e '.[hf]'`)."""
  try:
    import torch  # noqa: PLC0415
    import transformers  # noqa: PLC0415
  except ImportError as err:
    raise HFError(f"check-hf runs the model in transformers, which needs torch and transformers "
                  f"({err}); install them with `pip install -e '.[hf]'` (torch's CPU wheel: "
                  "--index-url https://download.pytorch.org/whl/cpu)") from None
  import jax.numpy as jnp  # noqa: PLC0415

  from llm_input.train import reload as run_lib  # noqa: PLC0415

  read_hf_config(source)  # a clear error for a folder that is not a HF model
  run = run_lib.load_run(workdir)
  theirs_model = transformers.AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32)
  theirs_model.eval()
  ours_model = run.model()
  rows = []
  for sentence in sentences or CHECK_SENTENCES:
    ids = run.prompt_ids(sentence)
    ours = np.asarray(ours_model(jnp.asarray([ids], jnp.int32))[0], np.float64)
    with torch.no_grad():
      theirs = theirs_model(torch.tensor([ids], dtype=torch.long)).logits[0].double().numpy()
    width = min(ours.shape[-1], theirs.shape[-1])
    ours, theirs = ours[:, :width], theirs[:, :width]
    log_p = theirs - _logsumexp(theirs)
    log_q = ours - _logsumexp(ours)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)
    diff = np.abs(ours - theirs)
    rows.append({"sentence": sentence, "tokens": len(ids), "max_abs_diff": float(diff.max()),
                 "max_rel_diff": float(diff.max() / max(np.abs(theirs).max(), 1e-30)),
                 "kl_mean": float(kl.mean()), "kl_max": float(kl.max()),
                 "top1_agree": float((ours.argmax(-1) == theirs.argmax(-1)).mean())})
  worst = max(r["max_rel_diff"] for r in rows)
  return {"run": str(run.folder), "from": str(source), "rows": rows,
          "max_abs_diff": max(r["max_abs_diff"] for r in rows), "max_rel_diff": worst,
          "kl_mean": float(np.mean([r["kl_mean"] for r in rows])),
          "kl_max": max(r["kl_max"] for r in rows),
          "top1_agree": float(np.mean([r["top1_agree"] for r in rows])),
          "tolerance": tolerance, "ok": worst <= tolerance,
          "torch": torch.__version__, "transformers": transformers.__version__}


def _logsumexp(x: np.ndarray) -> np.ndarray:
  top = x.max(-1, keepdims=True)
  return top + np.log(np.exp(x - top).sum(-1, keepdims=True))


def jax_to_numpy_flat(params: dict) -> dict[str, np.ndarray]:
  """{"blocks/attention/q_kernel": array, ...}: a parameter tree as flat numpy arrays."""
  return _flatten(jax_to_numpy(params))
