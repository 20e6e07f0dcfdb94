"""Hugging Face checkpoints in and out, held to the golden fixtures that `transformers` wrote
(tests/fixtures/make_hf_fixtures.py): logits, greedy continuations, parameter counts, the
exact tensors and config fields, and one-line refusals of bad folders."""

import importlib.util
import json
import pathlib
import re
import shutil

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import tokenizers as hf_tokenizers
from safetensors.numpy import load_file, save_file

from llm_input import cli
from llm_input.errors import UserError
from llm_input.interop import huggingface as hf
from llm_input.model import transformer
from llm_input.model.config import ModelConfig
from llm_input.tokenizers.char import ByteTokenizer
from llm_input.train import loop
from llm_input.train import reload as run_lib

from helpers import make_text_corpus, small_config
from test_pretrained_tokenizers import HARD

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "hf"
MODELS = ("gpt2", "llama", "qwen2", "mistral")
# config.json fields an export writes differently from transformers' own defaults, on purpose:
# this project trains without dropout; Qwen2's max_window_layers only matters with a window.
CHOSEN = {"attn_pdrop", "embd_pdrop", "resid_pdrop", "summary_first_dropout", "max_window_layers"}


def golden(name: str) -> dict:
  return load_file(str(FIXTURES / name / "golden.safetensors"))


def import_cli(source, out, *extra) -> None:
  assert cli.main(["import-hf", "--from", str(source), "--out", str(out), *extra]) == 0


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
  """Every fixture imported once through the command line."""
  root = tmp_path_factory.mktemp("imported")
  for name in (*MODELS, "llama_sharded"):
    import_cli(FIXTURES / name, root / name)
  return root


def logits_of(run, ids) -> np.ndarray:
  return np.asarray(run.model()(jnp.asarray(ids, jnp.int32)))


@pytest.mark.parametrize("name", (*MODELS, "llama_sharded"))
def test_imported_model_computes_the_transformers_logits(imported, name):
  source = "llama" if name == "llama_sharded" else name
  want = golden(source)
  run = run_lib.load_run(imported / name)
  have = logits_of(run, want["input_ids"])
  scale = np.abs(want["logits"]).max()
  assert np.abs(have - want["logits"]).max() / scale <= 1e-5
  np.testing.assert_allclose(have, want["logits"], rtol=1e-5, atol=1e-5 * scale)
  greedy = run.sampler.generate(want["greedy_prompt"].tolist(), len(want["greedy"]), temperature=0.0)
  assert list(greedy) == want["greedy"].tolist()
  meta = json.loads((FIXTURES / source / "golden.json").read_text())
  assert transformer.count_params(run.model_cfg) == meta["num_parameters"]
  assert run.folder.state().startswith(f"imported from Hugging Face ({meta['architecture']}")
  # the tokenizer encodes as the fixture's own tokenizer.json does
  theirs = hf_tokenizers.Tokenizer.from_file(str(FIXTURES / source / "tokenizer.json"))
  for text in HARD:
    assert run.tokenizer.encode(text) == theirs.encode(text, add_special_tokens=False).ids


def test_each_architecture_is_what_its_config_says(imported):
  cfgs = {n: run_lib.load_run(imported / n).model_cfg for n in MODELS}
  assert (cfgs["gpt2"].positions, cfgs["gpt2"].norm, cfgs["gpt2"].mlp, cfgs["gpt2"].use_bias) == (
      "learned", "layernorm", "gelu", True)
  assert (cfgs["llama"].kv_heads, cfgs["llama"].tie_embeddings, cfgs["llama"].rope_base) == (2, False, 500000.0)
  assert (cfgs["qwen2"].kv_heads, cfgs["qwen2"].has_qkv_bias, cfgs["qwen2"].use_bias,
          cfgs["qwen2"].tie_embeddings, cfgs["qwen2"].rope_base) == (1, True, False, True, 1e6)
  assert cfgs["mistral"].norm_eps == 1e-5


def _same_tensors(a: dict, b: dict) -> None:
  assert sorted(a) == sorted(b)
  for key in a:
    assert (a[key].dtype, a[key].shape) == (b[key].dtype, b[key].shape), key
    assert a[key].tobytes() == b[key].tobytes(), key


@pytest.mark.parametrize("name", MODELS)
def test_export_of_an_import_is_the_fixture_and_imports_back_bitwise(imported, tmp_path, name):
  assert cli.main(["export-hf", "--run", str(imported / name), "--out", str(tmp_path / "hf")]) == 0
  _same_tensors(load_file(str(FIXTURES / name / "model.safetensors")),
                load_file(str(tmp_path / "hf" / "model.safetensors")))
  theirs = json.loads((FIXTURES / name / "config.json").read_text())
  ours = json.loads((tmp_path / "hf" / "config.json").read_text())
  assert set(ours) == set(theirs) - {"transformers_version"}
  assert {k for k in ours if ours[k] != theirs[k]} <= CHOSEN
  import_cli(tmp_path / "hf", tmp_path / "again")
  first, again = run_lib.load_run(imported / name), run_lib.load_run(tmp_path / "again")
  _same_tensors(hf.jax_to_numpy_flat(first.params), hf.jax_to_numpy_flat(again.params))


def test_bfloat16_checkpoint_is_kept_and_written_back_bitwise(tmp_path):
  source = tmp_path / "bf16"
  shutil.copytree(FIXTURES / "llama", source)
  tensors = {k: v.astype(ml_dtypes.bfloat16) for k, v in load_file(str(source / "model.safetensors")).items()}
  save_file(tensors, str(source / "model.safetensors"), metadata={"format": "pt"})
  import_cli(source, tmp_path / "run")
  run = run_lib.load_run(tmp_path / "run")
  assert run.folder.imported()["dtype"] == "bfloat16"
  table = np.asarray(run.params["embedding"]["table"])
  assert table.dtype == np.float32
  np.testing.assert_array_equal(table, tensors["model.embed_tokens.weight"].astype(np.float32))
  assert cli.main(["export-hf", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out")]) == 0
  _same_tensors(tensors, load_file(str(tmp_path / "out" / "model.safetensors")))
  assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"


def expected_hf_shapes(config: dict) -> dict[str, tuple]:
  """The tensors `transformers` builds for a config.json, written out from its model code's
  conventions (not from llm_input's layout table)."""
  if config["model_type"] == "gpt2":
    d, v, f = config["n_embd"], config["vocab_size"], config["n_inner"] or 4 * config["n_embd"]
    out = {"transformer.wte.weight": (v, d), "transformer.wpe.weight": (config["n_positions"], d),
           "transformer.ln_f.weight": (d,), "transformer.ln_f.bias": (d,)}
    for i in range(config["n_layer"]):
      p = f"transformer.h.{i}."
      out.update({p + "ln_1.weight": (d,), p + "ln_1.bias": (d,), p + "ln_2.weight": (d,),
                  p + "ln_2.bias": (d,), p + "attn.c_attn.weight": (d, 3 * d),
                  p + "attn.c_attn.bias": (3 * d,), p + "attn.c_proj.weight": (d, d),
                  p + "attn.c_proj.bias": (d,), p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
                  p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,)})
    return out
  d, v, f = config["hidden_size"], config["vocab_size"], config["intermediate_size"]
  dh = d // config["num_attention_heads"]
  kv = config["num_key_value_heads"] * dh
  out = {"model.embed_tokens.weight": (v, d), "model.norm.weight": (d,)}
  if not config["tie_word_embeddings"]:
    out["lm_head.weight"] = (v, d)
  for i in range(config["num_hidden_layers"]):
    p = f"model.layers.{i}."
    out.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                p + "self_attn.q_proj.weight": (d, d), p + "self_attn.k_proj.weight": (kv, d),
                p + "self_attn.v_proj.weight": (kv, d), p + "self_attn.o_proj.weight": (d, d),
                p + "mlp.gate_proj.weight": (f, d), p + "mlp.up_proj.weight": (f, d),
                p + "mlp.down_proj.weight": (d, f)})
  return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """Tiny trained runs with the byte tokenizer, trained when first asked for: GPT-2 shaped,
  and Llama shaped (RoPE, RMSNorm, SwiGLU, no biases, 2 K/V heads, untied head)."""
  root = tmp_path_factory.mktemp("trained")
  corpus = make_text_corpus(root / "corpus", files=40)
  common = ("tokenizer.kind=byte", "model.d_model=16", "data.seq_len=16", "model.max_len=16",
            "train.steps=3", "train.eval_every=3", "train.eval_batches=1", "checkpoint.every_steps=3",
            "sample.prompts=()")
  arms = {"gpt2": (), "llama": ("model.positions=rope", "model.norm=rmsnorm", "model.mlp=swiglu",
                                "model.use_bias=False", "model.num_kv_heads=2",
                                "model.tie_embeddings=False")}

  def get(name):
    if not (root / name / "summary.json").exists():
      loop.train(small_config(corpus, root / "data", *common, *arms[name]), root / name,
                 say=lambda *_: None)
    return root / name

  return get


# The GPT-2 arm is in `make test-slow` (the fixtures test GPT-2's layout; this one adds the
# byte tokenizer, which the Llama arm tests as well).
@pytest.mark.parametrize("name", (pytest.param("gpt2", marks=pytest.mark.slow), "llama"))
def test_export_of_a_trained_byte_run_is_what_transformers_expects(trained, tmp_path, name):
  out = tmp_path / "hf"
  assert cli.main(["export-hf", "--run", str(trained(name)), "--out", str(out)]) == 0
  config = json.loads((out / "config.json").read_text())
  fixture = json.loads((FIXTURES / name / "config.json").read_text())
  assert set(config) == set(fixture) - {"transformers_version"}
  assert config["architectures"] == fixture["architectures"]
  tensors = load_file(str(out / "model.safetensors"))
  assert {k: v.shape for k, v in tensors.items()} == expected_hf_shapes(config)
  assert {k.replace(".1.", ".0.") for k in tensors} == {
      k.replace(".1.", ".0.") for k in load_file(str(FIXTURES / name / "model.safetensors"))}
  assert config["vocab_size"] == ByteTokenizer.fixed_vocab_size
  # the tokenizer.json, read by the tokenizers library, encodes and decodes as the byte tokenizer
  theirs = hf_tokenizers.Tokenizer.from_file(str(out / "tokenizer.json"))
  for text in HARD:
    ids = theirs.encode(text, add_special_tokens=False).ids
    assert ids == ByteTokenizer().encode(text)
    assert theirs.decode(ids) == text
  tok_config = json.loads((out / "tokenizer_config.json").read_text())
  assert (tok_config["bos_token"], tok_config["eos_token"], tok_config["pad_token"]) == ("<s>", "</s>", "<pad>")
  # and it imports back to the same parameters and logits
  import_cli(out, tmp_path / "back")
  ours, back = run_lib.load_run(trained(name)), run_lib.load_run(tmp_path / "back")
  _same_tensors(hf.jax_to_numpy_flat(ours.params), hf.jax_to_numpy_flat(back.params))
  ids = [[1, 40, 41, 42, 43, 44]]  # the same parameters; the presets' attention paths may differ
  np.testing.assert_allclose(logits_of(ours, ids), logits_of(back, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not (importlib.util.find_spec("torch") and importlib.util.find_spec("transformers")),
                    reason="check-hf needs torch and transformers (the hf extra), which `make test` "
                    "does not install")
def test_check_hf_live(imported, trained, tmp_path, capsys):
  for name in MODELS:
    assert cli.main(["check-hf", "--run", str(imported / name), "--from", str(FIXTURES / name)]) == 0
    assert "same model" in capsys.readouterr().out
  # an exported trained run, loaded by transformers itself
  assert cli.main(["export-hf", "--run", str(trained("llama")), "--out", str(tmp_path / "hf")]) == 0
  assert cli.main(["check-hf", "--run", str(trained("llama")), "--from", str(tmp_path / "hf"),
                   "--json"]) == 0
  assert json.loads(capsys.readouterr().out.splitlines()[-1])["ok"]
  # two different models are told apart
  assert cli.main(["check-hf", "--run", str(imported / "llama"), "--from", str(FIXTURES / "mistral")]) == 1
  assert "DIFFERENT" in capsys.readouterr().out


def test_check_hf_without_torch_says_what_to_install(imported, monkeypatch, capsys):
  import builtins  # noqa: PLC0415

  real = builtins.__import__

  def no_torch(name, *args, **kw):
    if name in ("torch", "transformers"):
      raise ImportError(f"No module named {name!r}")
    return real(name, *args, **kw)

  monkeypatch.setattr(builtins, "__import__", no_torch)
  assert cli.main(["check-hf", "--run", str(imported / "gpt2"), "--from", str(FIXTURES / "gpt2")]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and "pip install -e '.[hf]'" in err


# -- refusals -------------------------------------------------------------------------------
def _refused(capsys, argv, *needles) -> str:
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1, err
  for needle in needles:
    assert needle in err, err
  return err


def _bad_copy(tmp_path, name="llama") -> pathlib.Path:
  folder = tmp_path / "bad"
  shutil.copytree(FIXTURES / name, folder)
  return folder


def _nothing_written(tmp_path) -> None:
  assert not (tmp_path / "out").exists()
  assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.tmp")]


def test_import_refuses_a_folder_without_config_json(tmp_path, capsys):
  folder = _bad_copy(tmp_path)
  (folder / "config.json").unlink()
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")], "no config.json")
  _nothing_written(tmp_path)


def test_import_refuses_an_unsupported_architecture(tmp_path, capsys):
  folder = _bad_copy(tmp_path)
  config = json.loads((folder / "config.json").read_text())
  config.update(architectures=["BertForMaskedLM"], model_type="bert")
  (folder / "config.json").write_text(json.dumps(config))
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "'BertForMaskedLM' is not supported", "GPT2LMHeadModel", "Qwen2ForCausalLM")
  _nothing_written(tmp_path)


def test_import_refuses_a_missing_tensor(tmp_path, capsys):
  folder = _bad_copy(tmp_path)
  tensors = load_file(str(folder / "model.safetensors"))
  del tensors["model.layers.1.mlp.up_proj.weight"]
  save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "'model.layers.1.mlp.up_proj.weight' is missing")
  _nothing_written(tmp_path)


def test_import_refuses_a_tensor_of_the_wrong_shape(tmp_path, capsys):
  folder = _bad_copy(tmp_path, "gpt2")
  tensors = load_file(str(folder / "model.safetensors"))
  tensors["transformer.h.0.attn.c_attn.weight"] = tensors["transformer.h.0.attn.c_attn.weight"][:, :40].copy()
  save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "'transformer.h.0.attn.c_attn.weight' has shape [16, 40]", "[16, 48]")
  _nothing_written(tmp_path)


def test_import_refuses_an_index_naming_a_missing_shard(tmp_path, capsys):
  folder = _bad_copy(tmp_path, "llama_sharded")
  (folder / "model-00002-of-00003.safetensors").unlink()
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "model-00002-of-00003.safetensors", "finish the download")
  _nothing_written(tmp_path)


def test_import_refuses_tensors_it_would_drop(tmp_path, capsys):
  folder = _bad_copy(tmp_path)
  tensors = load_file(str(folder / "model.safetensors"))
  tensors["model.layers.0.self_attn.q_norm.weight"] = np.ones(4, np.float32)  # a Qwen3-like extra
  save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "q_norm.weight", "refusing to drop")
  _nothing_written(tmp_path)


def test_import_refuses_settings_the_model_cannot_compute(tmp_path, capsys):
  folder = _bad_copy(tmp_path)
  config = json.loads((folder / "config.json").read_text())
  config["rope_parameters"] = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0}
  (folder / "config.json").write_text(json.dumps(config))
  _refused(capsys, ["import-hf", "--from", str(folder), "--out", str(tmp_path / "out")],
           "rope_type 'llama3'")
  _nothing_written(tmp_path)


def test_import_refuses_a_non_empty_out_and_training_an_imported_run(imported, tmp_path, capsys):
  (tmp_path / "out").mkdir()
  (tmp_path / "out" / "keep.txt").write_text("mine")
  _refused(capsys, ["import-hf", "--from", str(FIXTURES / "gpt2"), "--out", str(tmp_path / "out")],
           "not empty")
  assert (tmp_path / "out" / "keep.txt").read_text() == "mine"
  with pytest.raises(UserError, match="imported from Hugging Face"):
    loop.train(run_lib.load_run(imported / "gpt2").config, imported / "gpt2")


@pytest.mark.parametrize("field,value,needle", [
    ("positions", "sinusoidal", "model.positions='sinusoidal'"),
    ("positions", "none", "model.positions='none'"),
    ("scale_embeddings", True, "model.scale_embeddings=True"),
    ("attention_scale", "none", "model.attention_scale='none'"),
    ("norm", "rmsnorm", "model.norm='rmsnorm'"),
    ("mlp", "swiglu", "model.mlp='swiglu'"),
    ("use_bias", False, "model.use_bias=False"),
    ("num_kv_heads", 2, "model.num_kv_heads=2"),
    ("causal", False, "model.causal=False"),
])
def test_architectures_without_a_hugging_face_equivalent_are_named(field, value, needle):
  base = ModelConfig(vocab_size=300, d_model=16, num_layers=2, num_heads=4, max_len=16)
  assert hf.family_of(base) == "gpt2"
  with pytest.raises(hf.HFError, match=needle.replace("(", r"\(")):
    hf.family_of(ModelConfig(**{**base.__dict__, field: value}))
  llama = ModelConfig(vocab_size=300, d_model=16, num_layers=2, num_heads=4, positions="rope",
                      norm="rmsnorm", mlp="swiglu", use_bias=False)
  assert hf.family_of(llama) == "llama"
  assert hf.family_of(ModelConfig(**{**llama.__dict__, "qkv_bias": True})) == "qwen2"


@pytest.mark.slow  # trains a run; the refusals themselves are the unit tests around it
def test_export_refuses_a_run_without_an_equivalent_before_writing(tmp_path, capsys):
  corpus = make_text_corpus(tmp_path / "corpus", files=40)
  loop.train(small_config(corpus, tmp_path / "data", "train.steps=1", "train.eval_every=1",
                          "train.eval_batches=1", "model.d_model=16", "data.seq_len=16",
                          "model.max_len=16", "model.positions=sinusoidal", "tokenizer.kind=byte",
                          "sample.prompts=()"),
             tmp_path / "sin", say=lambda *_: None)
  capsys.readouterr()  # the training's progress bars
  _refused(capsys, ["export-hf", "--run", str(tmp_path / "sin"), "--out", str(tmp_path / "out")],
           "model.positions='sinusoidal'", "nothing was written")
  _nothing_written(tmp_path)


@pytest.mark.parametrize("kind", ("char", "word", "bpe"))
def test_export_names_tokenizers_it_cannot_write(kind):
  from llm_input import tokenizers  # noqa: PLC0415

  from test_tokenizers import CORPUS  # noqa: PLC0415

  tokenizer = tokenizers.train(kind, 400, CORPUS.splitlines())
  with pytest.raises(hf.HFError, match=f"tokenizer.kind='{kind}'.*nothing was written"):
    hf._tokenizer_files(tokenizer)


# -- the analysis reads imported models ------------------------------------------------------
def test_report_reads_an_imported_model(tmp_path):
  corpus = make_text_corpus(tmp_path / "corpus", files=40)
  run = tmp_path / "gpt2"
  import_cli(FIXTURES / "gpt2", run, f"--config.data.corpus=text:{corpus}",
             f"--config.data.data_dir={tmp_path / 'data'}")
  assert run_lib.load_run(run).config.data.corpus == f"text:{corpus}"
  assert cli.main(["report", "--run", str(run)]) == 0
  data = json.loads((run / "report.json").read_text())
  assert data["state"].startswith("imported from Hugging Face (GPT2LMHeadModel")
  assert list(data["embeddings"]) == ["imported"]
  assert "imported from Hugging Face" in data["notes"][0]
  rows = np.asarray(data["attention"]["row_sums"])
  np.testing.assert_allclose(rows, 1.0, atol=1e-5)


@pytest.mark.slow  # a subprocess that imports everything again
def test_the_claims_script_reads_an_imported_model(tmp_path):
  import subprocess  # noqa: PLC0415
  import sys  # noqa: PLC0415

  from helpers import ROOT  # noqa: PLC0415

  run = tmp_path / "gpt2"
  import_cli(FIXTURES / "gpt2", run)
  done = subprocess.run([sys.executable, str(ROOT / "experiments/claims/claims.py"), "--run", str(run),
                         "--out", str(tmp_path / "claims.json")], capture_output=True, text=True,
                        cwd=ROOT, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "| Without positions, attention is permutation-invariant (shuffling the words shuffles the outputs, " \
         "nothing else changes) | max" in done.stdout
  claims = json.loads((tmp_path / "claims.json").read_text())
  assert claims["permutation"]["none_bidirectional"] < 1e-4 < claims["permutation"]["own"]
  assert claims["hello"]["Hello"]["ids"] == run_lib.load_run(run).tokenizer.encode("Hello")
  # the main table with the imported model's column: every claim gets a cell, decided by the
  # main table's rule where one model can decide it; the committed table is not touched
  committed = (ROOT / "experiments/claims/claims_table.md").read_text()
  done = subprocess.run([sys.executable, str(ROOT / "experiments/claims/claims.py"), "--imported",
                         str(tmp_path / "claims.json"), "--out", str(tmp_path / "table.md")],
                        capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  lines = (tmp_path / "table.md").read_text().splitlines()
  cells = {}
  for line in lines[2:]:
    row = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    assert len(row) == 6, line
    cells[row[0]] = row[-1]
  assert str(run) in lines[0] and len(cells) == len(committed.splitlines()) - 2
  assert committed == (ROOT / "experiments/claims/claims_table.md").read_text()
  several = "needs several trained models (arms or seeds), not one"
  assert cells['More layers build deeper understanding ("why multiple layers?")'] == several
  permutation = next(v for k, v in cells.items() if k.startswith("Without positions"))
  assert "holds only without the causal mask" in permutation
  mixing = next(v for k, v in cells.items() if k.startswith("Attention moves information"))
  assert "holds in the one model" in mixing
  ids = next(v for k, v in cells.items() if k.startswith("Token ids are"))
  assert f"{claims['table']['adjacent']['mean']:+.3f}" in ids


def test_import_refuses_overrides_of_the_model_section(tmp_path, capsys):
  _refused(capsys, ["import-hf", "--from", str(FIXTURES / "gpt2"), "--out", str(tmp_path / "out"),
                    "--config.model.d_model=32"], "override data, sample or other sections only")
  _nothing_written(tmp_path)


def test_host_checksums_equal_the_device_checksums(monkeypatch):
  from llm_input.train import checkpoint  # noqa: PLC0415

  monkeypatch.setattr(checkpoint, "_CHUNK", 7)  # many pieces per array, one partial
  rng = np.random.default_rng(0)
  state = {"params": {"a": rng.normal(size=(5, 11)).astype(np.float32),
                      "b": rng.normal(size=(23,)).astype(ml_dtypes.bfloat16),
                      "c": np.arange(9, dtype=np.int32)}}
  assert checkpoint.host_checksums(state) == checkpoint.state_checksums(state)
  state["params"]["a"][2, 3] = np.inf
  assert checkpoint.host_checksums(state) == checkpoint.state_checksums(state)
  assert checkpoint.host_checksums(state)[1] is False


def test_params_reads_an_imported_run(imported, capsys):
  assert cli.main(["params", "--run", str(imported / "llama"), "--json"]) == 0
  counted = json.loads(capsys.readouterr().out)["params"]
  assert counted == json.loads((FIXTURES / "llama" / "golden.json").read_text())["num_parameters"]
