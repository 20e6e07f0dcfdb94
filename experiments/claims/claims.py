"""The explainer's claims (../shared/seed/understanding-llm-input-space.txt), measured on this
project's trained models and tokenizers. Writes claims.json and claims_figures.md next to this
file; README.md quotes them with a verdict per claim.

Needs the finished runs of `experiments/positions` (3 seeds per arm: the learned, rope and none
models at step 0 and step 200), the seed-0 char and word runs of `experiments/granularity`, and
the runs of `experiments/attention_scale` (models trained with and without 1/sqrt(d_head)):

  llm-input sweep experiments/positions/sweep.py
  llm-input sweep experiments/granularity/sweep.py
  llm-input sweep experiments/attention_scale/sweep.py
  python experiments/claims/claims.py            # ~1 min on 2 cores (trains one 50k bpe)

On one model (an imported GPT-2 or Llama, or any run), and as a last column of the table:

  python experiments/claims/claims.py --run RUN --out RUN_CLAIMS.json
  python experiments/claims/claims.py --imported RUN_CLAIMS.json [--out TABLE.md]

Modern English for the tokens-per-word claim: the reference topics that ship with CPython
(`pydoc_data.topics`, Python 3.11.7 here: the language reference and library prose, 65,501
words), which needs no download; it is technical English, not web text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import platform
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from llm_input import tokenizers
from llm_input.analysis import embeddings
from llm_input.data import pipeline
from llm_input.tokenizers import stats as stats_lib
from llm_input.train import reload as run_lib

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent.parent
POSITIONS = ROOT / "runs/sweeps/positions"
GRANULARITY = ROOT / "runs/sweeps/granularity"
SEEDS = (0, 1, 2)


def mean_std(values) -> dict:
  values = [float(v) for v in values]
  return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
          "n": len(values), "values": values}


def modern_english() -> list[str]:
  import pydoc_data.topics  # noqa: PLC0415

  return [text for _, text in sorted(pydoc_data.topics.topics.items())]


# -- 1. tokens per word at ~50k -----------------------------------------------------------
def tokens_per_word() -> dict:
  cfg = pipeline.PipelineConfig(corpus="shakespeare")
  train = list(pipeline.documents(cfg, "train"))
  validation = list(pipeline.documents(cfg, "validation"))
  out = {"python": platform.python_version()}
  with tempfile.TemporaryDirectory() as tmp:
    tok = tokenizers.train("bpe", 50000, train, tokenizers.TokenizerOptions())
    tok.save(pathlib.Path(tmp) / "bpe50k")
    out["bpe50k_vocab"] = tok.vocab_size
    out["shakespeare_validation"] = stats_lib.compute(tok, validation).to_dict()
    out["modern_english"] = stats_lib.compute(tok, modern_english()).to_dict()
  return out


# -- 2. letters and words ------------------------------------------------------------------
def letters_and_words() -> dict:
  char = tokenizers.load(GRANULARITY / "kind-char_vocab_size-4096_seed-0/tokenizer")
  word = tokenizers.load(GRANULARITY / "kind-word_vocab_size-8192_seed-0/tokenizer")
  probes = ["Hello", "hello", "Helo", "hte", "king", "kingdomship", "Rumpelstiltskin"]
  out = {"char_hello": [char.id_to_piece(i) for i in char.encode("Hello")],
         "word": {w: [word.id_to_piece(i) for i in word.encode(w)] for w in probes},
         "word_unk_id": word.unk_id}
  cfg = pipeline.PipelineConfig(corpus="shakespeare")
  validation = list(pipeline.documents(cfg, "validation"))
  out["word_validation"] = stats_lib.compute(word, validation).to_dict()
  out["char_validation"] = stats_lib.compute(char, validation).to_dict()
  return out


# -- 3. embeddings: unrelated at init, closer after training ----------------------------------
PAIRS = (("Hello", "hello"), ("king", "queen"), ("love", "hate"), ("lord", "king"))


def embedding_claims() -> dict:
  out: dict = {}
  for step in (0, 200):
    per_pair: dict = {f"{a}/{b}": [] for a, b in PAIRS}
    percentile: dict = {f"{a}/{b}": [] for a, b in PAIRS}
    random_mean, random_std = [], []
    for seed in SEEDS:
      run = run_lib.load_run(POSITIONS / f"positions-learned_seed-{seed}", step)
      table = np.asarray(run.params["embedding"]["table"], np.float64)[: run.tokenizer.vocab_size]
      cosines = embeddings.random_pair_cosines(table, count=20000, seed=seed)
      random_mean.append(cosines.mean())
      random_std.append(cosines.std())
      for row in embeddings.pair_similarities(table, run.tokenizer, PAIRS):
        key = f"{row['a']}/{row['b']}"
        per_pair[key].append(row["cosine"])
        percentile[key].append(float((cosines < row["cosine"]).mean() * 100))
        out.setdefault("pieces", {})[key] = [row["pieces_a"], row["pieces_b"]]
    out[f"step{step}"] = {"pairs": {k: mean_std(v) for k, v in per_pair.items()},
                          "percentile_among_random_pairs": {k: mean_std(v) for k, v in percentile.items()},
                          "random_pair_mean": mean_std(random_mean), "random_pair_std": mean_std(random_std)}
  out["d_model"] = int(table.shape[1])
  return out


# -- 4. permutation invariance without positions --------------------------------------------
def permutation() -> dict:
  out = {}
  rng = np.random.default_rng(0)
  for seed in SEEDS:
    run = run_lib.load_run(POSITIONS / f"positions-none_seed-{seed}")
    ids = rng.integers(3, run.tokenizer.vocab_size, size=(1, 64)).astype(np.int32)
    perm = rng.permutation(64)
    for causal in (False, True):
      cfg = dataclasses.replace(run.model_cfg, causal=causal, attention_impl="reference")
      model = dataclasses.replace(run, model_cfg=cfg).model()
      logits = np.asarray(model(jnp.asarray(ids)))
      permuted = np.asarray(model(jnp.asarray(ids[:, perm])))
      out.setdefault(f"causal={causal}", []).append(float(np.abs(permuted - logits[:, perm]).max()))
  out["logit_scale"] = float(np.abs(logits).max())
  return {k: mean_std(v) if isinstance(v, list) else v for k, v in out.items()}


# -- 5. attention statistics (the sqrt(d_k) claim below and the one-model mode) -----------------
def _validation_ids(run, rows: int = 16) -> np.ndarray:
  pipe = pipeline.PipelineConfig.from_config(run.config)
  batch = next(iter(pipeline.eval_batches(pipe, run.tokenizer)))
  return np.asarray(batch["inputs"][:rows, :128], np.int32)


def _attention_stats(model, ids) -> dict:
  _, weights = model(jnp.asarray(ids), return_attention=True)  # (layers, B, H, L, L)
  w = np.asarray(weights, np.float64)[:, :, :, 16:, :]  # rows with >= 17 visible keys
  entropy = -(np.where(w > 0, w * np.log(np.maximum(w, 1e-30)), 0.0)).sum(-1)
  visible = np.arange(16, w.shape[3] + 16) + 1
  return {"entropy": float(entropy.mean()), "uniform_entropy": float(np.log(visible).mean()),
          "max_weight": float(w.max(-1).mean()), "rows_over_0.9": float((w.max(-1) > 0.9).mean())}


def _scaled_and_unscaled(run, ids) -> tuple[dict, dict]:
  """Attention statistics with the model's 1/sqrt(d_head) and without it (the query kernel
  and bias times sqrt(d_head), which RoPE's rotation commutes with)."""
  factor = math.sqrt(run.model_cfg.d_head)
  params = jax.tree.map(lambda x: x, run.params)
  attn = params["blocks"]["attention"]
  attn["q_kernel"] = attn["q_kernel"] * factor
  if "q_bias" in attn:
    attn["q_bias"] = attn["q_bias"] * factor
  return (_attention_stats(run.model(), ids),
          _attention_stats(dataclasses.replace(run, params=params).model(), ids))


# sqrt(d_k), tested without circularity: unit-variance scores at init, and models trained with
# and without the scale (experiments/attention_scale) at d_head 8, 32 and 128
ATTENTION_SCALE = ROOT / "runs/sweeps/attention_scale"
ATTENTION_SCALE_DIR = HERE.parent / "attention_scale"  # its committed results.csv
SCALE_HEADS = {1: 128, 4: 32, 16: 8}  # num_heads -> d_head at d_model 128


def _softmax_rows(scores: np.ndarray) -> dict:
  w = np.exp(scores - scores.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  entropy = -(w * np.log(np.maximum(w, 1e-300))).sum(-1)
  return {"score_var": float(scores.var()), "entropy": float(entropy.mean()),
          "uniform_entropy": float(np.log(scores.shape[-1])), "max_weight": float(w.max(-1).mean()),
          "rows_over_0.9": float((w.max(-1) > 0.9).mean())}


def scale_at_init(rows: int = 4096, keys: int = 128) -> dict:
  """q and k with unit-variance entries (what the claim assumes): per d_k, the scores q.k and
  q.k / sqrt(d_k) of one query against `keys` keys, `rows` times; their variance and the
  softmax's entropy and peakedness."""
  rng = np.random.default_rng(0)
  out = {}
  for d in sorted(SCALE_HEADS.values()):
    q = rng.standard_normal((rows, 1, d))
    k = rng.standard_normal((rows, keys, d))
    scores = (q * k).sum(-1)
    out[d] = {"none": _softmax_rows(scores), "sqrt": _softmax_rows(scores / math.sqrt(d))}
  return out


def attention_scale() -> dict:
  """The sqrt(d_k) claim: `scale_at_init`, and the models of experiments/attention_scale: each
  (d_head, scale) arm's validation bits per byte per seed at 200 and 400 steps (from the
  committed results.csv), and its trained attention's entropy and peakedness (seed runs at
  400 steps, 16 validation sequences of 128 tokens, rows 17-128, each model with its own scale)."""
  from llm_input.analysis import budgets  # noqa: PLC0415

  rows = budgets.read_results(ATTENTION_SCALE_DIR / "results.csv", "arm")
  trained: dict = {}
  for r in rows:
    heads, scale = int(r["model.num_heads"]), r["model.attention_scale"]
    arm = trained.setdefault(str(SCALE_HEADS[heads]), {}).setdefault(scale, {})
    arm.setdefault(str(int(r["steps"])), {})[str(int(r["seed"]))] = float(r["val_bits_per_byte"])
  attention: dict = {}
  for heads, d_head in SCALE_HEADS.items():
    for scale in ("sqrt", "none"):
      found = [s for s in SEEDS if (ATTENTION_SCALE / f"num_heads-{heads}_attention_scale-{scale}_steps-400_seed-{s}"
                                     / "summary.json").exists()]
      per_seed = []
      for seed in found:
        run = run_lib.load_run(ATTENTION_SCALE / f"num_heads-{heads}_attention_scale-{scale}_steps-400_seed-{seed}")
        per_seed.append(_attention_stats(run.model(), _validation_ids(run)))
      if per_seed:
        attention.setdefault(str(d_head), {})[scale] = {**{k: mean_std([p[k] for p in per_seed]) for k in per_seed[0]},
                                                        "seeds": found}
  flops = {str(int(r["steps"])): r["train_flops"] for r in rows}
  return {"init": {str(d): v for d, v in scale_at_init().items()}, "bits_per_byte": trained,
          "attention": attention, "train_flops": flops}


# early layers local, later layers global: mean attention distance per layer
HEADS_DIR = HERE.parent / "heads"  # its committed head_stats.json (12 models, 4 layers)
GRANULARITY_CURVE_RUNS = ROOT / "runs/sweeps/granularity_curve"


VOCAB_CURVE = ROOT / "runs/sweeps/vocab_size_curve"
TEN_X_RUNS = {"char": GRANULARITY_CURVE_RUNS / "kind-char_vocab_size-84_steps-3106_seed-0",
              "byte": GRANULARITY_CURVE_RUNS / "kind-byte_vocab_size-259_steps-3033_seed-0",
              "bpe 4,096": GRANULARITY_CURVE_RUNS / "kind-bpe_vocab_size-4096_steps-2000_seed-0",
              "unigram 4,096": GRANULARITY_CURVE_RUNS / "kind-unigram_vocab_size-4096_steps-2000_seed-0",
              "word 8,192": GRANULARITY_CURVE_RUNS / "kind-word_vocab_size-8192_steps-1467_seed-0",
              "bpe 1,000": VOCAB_CURVE / "vocab_size-1000_warmup_steps-69_steps-2758_seed-0",
              "bpe 16,000": VOCAB_CURVE / "vocab_size-16000_warmup_steps-24_steps-972_seed-0",
              "bpe 50,000": VOCAB_CURVE / "vocab_size-50000_warmup_steps-10_steps-394_seed-0"}


def layer_distance() -> dict:
  """Mean attention distance (tokens back, weight-averaged) and entropy per layer, averaged over
  a layer's heads, per trained 4-layer tiny model, in two groups: the heads experiment's 12
  models at 400 steps (1, 2, 4, 8 heads x 3 seeds; its committed head_stats.json) and the 8
  seed-0 models trained to 10x the budget (7.09e13 FLOPs) on the granularity and vocab_size
  curves (five granularities and four bpe sizes, 4,096 shared), 32 whole validation windows
  each. The reference: attention spread evenly over the visible keys of a 256-token window,
  (256 - 1) / 4 = 63.75 tokens back."""
  from llm_input.analysis import attention  # noqa: PLC0415

  heads = json.loads((HEADS_DIR / "head_stats.json").read_text())
  short = [{"model": f"{r['heads']} heads, seed {r['seed']}", "distance": np.mean(r["distance"], axis=1).tolist(),
            "entropy": np.mean(r["entropy"], axis=1).tolist()} for r in heads["runs"]]
  long = []
  for name, folder in TEN_X_RUNS.items():
    st = attention.run_head_statistics(run_lib.load_run(folder), 32)
    long.append({"model": name, "distance": np.mean(st["distance"], axis=1).tolist(),
                 "entropy": np.mean(st["entropy"], axis=1).tolist()})
  return {"groups": {f"{heads['budget']} steps (1.42e13 FLOPs)": short, "7.09e13 FLOPs": long},
          "uniform_distance": (256 - 1) / 4}


# heads capture different relations: divergence between the heads of a layer, trained vs init
def head_diversity() -> dict:
  """Per layer, the mean Jensen-Shannon divergence between the attention of every pair of a
  layer's heads (`attention.head_statistics`; 0: same keys, ln 2: disjoint), on 32 whole
  validation windows, for the tiny model with 4 and 16 heads trained 400 steps with the scale
  (experiments/attention_scale, 3 seeds each) and for the same models at initialisation (a
  fresh draw of the same config and seed): the baseline of heads that learned nothing."""
  from flax import nnx  # noqa: PLC0415

  from llm_input.analysis import attention  # noqa: PLC0415
  from llm_input.model import transformer  # noqa: PLC0415

  out: dict = {}
  for heads in (4, 16):
    for seed in SEEDS:
      folder = ATTENTION_SCALE / f"num_heads-{heads}_attention_scale-sqrt_steps-400_seed-{seed}"
      if not (folder / "summary.json").exists():
        continue
      run = run_lib.load_run(folder)
      fresh = nnx.state(transformer.create(run.model_cfg, seed), nnx.Param)
      for name, model_run in (("trained", run), ("init", dataclasses.replace(run, params=fresh))):
        st = attention.run_head_statistics(model_run, 32)
        out.setdefault(str(heads), {}).setdefault(name, []).append(st["head_divergence"])
  return out


# attention mixes across tokens, the MLP within each token: a perturbation test
def _block(model, layer: int):
  from flax import nnx  # noqa: PLC0415

  graphdef, stacked = nnx.split(model.blocks)
  return nnx.merge(graphdef, jax.tree.map(lambda a: a[layer], stacked))


def _mixing_ratios(model, ids, rng, where: int) -> dict[str, list[float]]:
  """Per layer of `model` on `ids` (B, L): each sublayer's output change at position `where`
  and (mean) at the later positions, relative to its output's size, when the layer's input at
  `where` moves by 10% of its norm in a random direction."""
  ids = jnp.asarray(ids)
  positions = jnp.broadcast_to(jnp.arange(ids.shape[1]), ids.shape)
  segments = jnp.ones(ids.shape, jnp.int32)
  x = model.positions(model.embedding(ids), positions)
  ratios: dict = {"attention_self": [], "attention_other": [], "mlp_self": [], "mlp_other": []}
  for layer in range(model.cfg.num_layers):
    block = _block(model, layer)
    direction = rng.standard_normal(x.shape[-1])
    bump = np.zeros(x.shape, np.float32)
    for b in range(x.shape[0]):
      bump[b, where] = 0.1 * np.linalg.norm(np.asarray(x[b, where])) * direction / np.linalg.norm(direction)
    for name, sub in (("attention", lambda h: block.attention(block.attention_norm(h), positions, segments)[0]),
                      ("mlp", lambda h: block.mlp(block.mlp_norm(h)))):
      before, after = np.asarray(sub(x), np.float64), np.asarray(sub(x + bump), np.float64)
      change = np.linalg.norm(after - before, axis=-1)  # (B, L)
      size = np.linalg.norm(before, axis=-1).mean()
      ratios[f"{name}_self"].append(float(change[:, where].mean() / size))
      ratios[f"{name}_other"].append(float(change[:, where + 1:].mean() / size))
    x, _, _ = block(x, positions, segments)
  return ratios


def mixing() -> dict:
  """Perturb one position's residual vector at the input of each layer (a random direction,
  10% of its norm) and measure how much each sublayer's output moves at that position and at
  the other positions: attention(norm(x)) and mlp(norm(x)) of the same block, same input.
  Claimed: attention moves the later positions, the MLP only the perturbed one. The tiny model
  trained 400 steps with the scale, 3 seeds, on 4 validation windows of 128 tokens, position 32."""
  rng = np.random.default_rng(0)
  out: dict = {"attention_other": [], "attention_self": [], "mlp_other": [], "mlp_self": []}
  where = 32
  for seed in SEEDS:
    folder = ATTENTION_SCALE / f"num_heads-4_attention_scale-sqrt_steps-400_seed-{seed}"
    if not (folder / "summary.json").exists():
      continue
    run = run_lib.load_run(folder)
    for k, v in _mixing_ratios(run.model(), _validation_ids(run, rows=4), rng, where).items():
      out[k].append(float(np.mean(v)))
  return {k: mean_std(v) for k, v in out.items() if v} | {"position": where}


# -- 6. "The bank by the river" -----------------------------------------------------------------
SENTENCES = {"river": "The bank by the river", "road": "The bank by the road",
             "house": "The house by the river"}


WORD_STARTS = ("\u2581", "\u0120", " ")  # SentencePiece's ▁, byte-level BPE's Ġ, a plain space


def _word_spans(pieces: list[str]) -> list[list[int]]:
  """Token positions of each word (a piece starting with ▁, Ġ or a space begins one)."""
  spans: list[list[int]] = []
  for i, piece in enumerate(pieces):
    if piece.startswith("<"):
      continue
    if piece.startswith(WORD_STARTS) or not spans:
      spans.append([i])
    else:
      spans[-1].append(i)
  return spans


def bank_river() -> dict:
  """How much the last word ("river", read to its last piece) attends to all pieces of the
  second word ("bank"), per head, against the same sentence with "road" and with "house"
  for "bank". A causal model cannot let "bank" look at "river", which comes after it."""
  from llm_input.analysis import attention  # noqa: PLC0415

  out: dict = {}
  for arm in ("learned", "rope"):
    rows: dict = {}
    for seed in SEEDS:
      run = run_lib.load_run(POSITIONS / f"positions-{arm}_seed-{seed}")
      model = run.model()
      for name, sentence in SENTENCES.items():
        maps = attention.attention_maps(model, run.tokenizer, sentence, bool(run.config.data.add_bos))
        spans = _word_spans(maps["tokens"])
        query, keys = spans[-1][-1], spans[1]
        if seed == 0:
          rows.setdefault("tokens", {})[name] = maps["tokens"]
        w = maps["weights"][:, :, query, keys].sum(-1)  # (layers, heads)
        row = rows.setdefault(name, {"max_head": [], "mean_heads": [], "best": [],
                                     "uniform": len(keys) / (query + 1)})
        row["max_head"].append(float(w.max()))
        row["mean_heads"].append(float(w.mean()))
        layer, head = np.unravel_index(int(np.argmax(w)), w.shape)
        row["best"].append([int(layer), int(head)])
    for name in SENTENCES:
      rows[name]["max_head"] = mean_std(rows[name]["max_head"])
      rows[name]["mean_heads"] = mean_std(rows[name]["mean_heads"])
    out[arm] = rows
  return out


# -- 7. granularity at equal compute -------------------------------------------------------------
SEEDS_DIR = HERE.parent / "granularity" / "seeds"  # `sweep.py --arg seeds`: 5 seeds at the curve's 2x


def granularity() -> dict:
  """The five granularities at one budget of the granularity curve (its 2x point, 1.42e13
  FLOPs) over five seeds, each arm at its best rate, from the committed seeds/results.csv:
  mean ± std per arm, the paired tests between arms, and the word arm's `<unk>` share."""
  from llm_input.analysis import budgets, sweep_tables  # noqa: PLC0415

  rows = budgets.read_results(SEEDS_DIR / "results.csv", "tokenizer.kind")
  arms = sweep_tables.aggregate([{k: r[k] for k in ("arm", "seed", "val_bits_per_byte")} for r in rows])
  first = {r["arm"]: r for r in rows}
  return {"budget_flops": rows[0]["budget"],
          "arms": {a["arm"]: {"val_bits_per_byte": (a["val_bits_per_byte_mean"], a["val_bits_per_byte_std"]),
                              "n": a["n"], "steps": first[a["arm"]]["steps"],
                              "learning_rate": float(first[a["arm"]].get("optimizer.learning_rate") or 3e-3),
                              "unk_rate": first[a["arm"]].get("unk_rate") or 0.0} for a in arms},
          "pairwise": [{k: r[k] for k in ("a", "b", "diff", "ci_low", "ci_high", "p", "p_wilcoxon", "p_holm",
                                          "distinguishable")}
                       for r in sweep_tables.pairwise(rows)]}


# -- 8. the input space on the granularity curve's runs (10x the compute, seed 0) -------------
GRANULARITY_CURVE = ROOT / "runs/sweeps/granularity_curve"
CURVE_DIR = HERE.parent / "granularity" / "curve"  # its committed results.csv and documents.json
CURVE_RUNS = {"char": "kind-char_vocab_size-84_steps-3106_seed-0", "bpe": "kind-bpe_vocab_size-4096_steps-2000_seed-0",
              "unigram": "kind-unigram_vocab_size-4096_steps-2000_seed-0",
              "word": "kind-word_vocab_size-8192_steps-1467_seed-0"}
FORMS = ("run", "runs", "ran", "running")
# endings of English (and Shakespeare's) verb and noun forms; "d" and "st" only after an "e"
# (love -> loved, lovest), and stems of 3+ letters, so that "and" is not "an" + "d"
INFLECTIONS = ("s", "es", "ed", "ing", "est", "eth", "'s", "'d", "e+d", "e+st")
RELATED = PAIRS + (("run", "running"), ("king", "kings"), ("man", "woman"), ("good", "bad"))


def _pieces(tok, word: str) -> list[str]:
  return [tok.id_to_piece(i) for i in tok.encode(word)]


def _boundaries(pieces: list[str]) -> list[int]:
  """Where a word's pieces end, in characters of the word (the leading ▁ not counted)."""
  out, at = [], 0
  for i, piece in enumerate(pieces):
    at += len(piece.lstrip("▁") if i == 0 else piece)
    out.append(at)
  return out


def _validation_words() -> list[str]:
  cfg = pipeline.PipelineConfig(corpus="shakespeare", validation_percent=12.0)
  return [w for text in pipeline.documents(cfg, "validation") for w in re.findall(r"[A-Za-z]+", text)]


def _inflects(entry: str, ending: str, known: set) -> bool:
  """Whether `entry` is another entry of `known` (3+ letters) plus `ending` ("e+d": a stem ending
  in e plus d)."""
  after, _, ending = ending.rpartition("+")
  stem = entry[: -len(ending)]
  return (entry.endswith(ending) and len(stem) >= 3 and stem in known and stem.endswith(after))


def _word_counts(words: list[str]) -> dict[str, int]:
  counts: dict = {}
  for w in words:
    counts[w] = counts.get(w, 0) + 1
  return counts


def _splits(tok, counts: dict[str, int]) -> dict:
  """How often `tok` cuts a word and its capitalised form (or its -s form) at different places,
  over the lower-case words of 3+ letters of `counts` whose other form occurs there too."""
  lower = sorted((w for w in counts if w.islower() and len(w) >= 3), key=lambda w: (-counts[w], w))  # commonest first
  case = [w for w in lower if w.capitalize() in counts]
  case_split = [f"{w.capitalize()}/{w}: {'+'.join(_pieces(tok, w.capitalize()))} vs {'+'.join(_pieces(tok, w))}"
                for w in case if _boundaries(_pieces(tok, w)) != _boundaries(_pieces(tok, w.capitalize()))]
  plural = [w for w in lower if w + "s" in counts]
  plural_split = [f"{w}/{w}s: {'+'.join(_pieces(tok, w))} vs {'+'.join(_pieces(tok, w + 's'))}"
                  for w in plural
                  if _boundaries(_pieces(tok, w + "s"))[: len(_pieces(tok, w))] != _boundaries(_pieces(tok, w))]
  return {"case_pairs": len(case), "case_split": len(case_split), "case_examples": case_split[:6],
          "plural_pairs": len(plural), "plural_split": len(plural_split), "plural_examples": plural_split[:6]}


def vocabulary() -> dict:
  """The word vocabulary's verb forms and inflected entries; how the subword tokenizers split
  the same forms, and how often they split a word and its capitalised form (or its -s form) at
  different places in the held-out plays."""
  toks = {k: tokenizers.load(GRANULARITY_CURVE / CURVE_RUNS[k] / "tokenizer") for k in ("word", "bpe", "unigram")}
  word = toks["word"]
  entries = [w for w in word.words if w.isalpha() or "'" in w]
  known = set(entries)
  inflected = [e for e in entries if any(_inflects(e, x, known) for x in INFLECTIONS)]
  out = {"forms": {k: {f: _pieces(t, f) for f in FORMS} for k, t in toks.items()},
         "word_entries": len(word.words), "word_alpha_entries": len(entries), "inflected": len(inflected),
         "inflected_examples": inflected[:12], "inflections": list(INFLECTIONS)}
  counts = _word_counts(_validation_words())
  for kind in ("bpe", "unigram"):
    out[kind] = _splits(toks[kind], counts)
  return out


def trained_tables() -> dict:
  """The tied embedding tables of the curve's bpe and unigram runs at 10x the compute (2,000
  steps): random pairs, ids next to each other, and related word pairs."""
  out = {}
  for kind in ("bpe", "unigram"):
    run = run_lib.load_run(GRANULARITY_CURVE / CURVE_RUNS[kind])
    tok = run.tokenizer
    table = np.asarray(run.params["embedding"]["table"], np.float64)[: tok.vocab_size]
    # the special ids (pad, <s>, </s>, <unk>) are not text
    out[kind] = {"run": CURVE_RUNS[kind], "step": run.step, **_table_stats(table, tok, first=4)}
  return out


def _table_stats(table: np.ndarray, tok, first: int, pairs=None) -> dict:
  """An embedding table's rows past the first `first`: cosine of random pairs of ids, of ids i
  and i+1 (with Cohen's d against the random pairs), and of word `pairs` (RELATED) with their
  percentile among the random pairs."""
  body = table[first:]
  rand = embeddings.random_pair_cosines(body, count=20000, seed=0)
  norm = body / np.maximum(np.linalg.norm(body, axis=1, keepdims=True), 1e-30)
  adjacent = (norm[:-1] * norm[1:]).sum(1)
  pooled = math.sqrt((rand.var(ddof=1) + adjacent.var(ddof=1)) / 2)
  pairs = [{**row, "percentile": float((rand < row["cosine"]).mean() * 100) if row["cosine"] is not None else None}
           for row in embeddings.pair_similarities(table, tok, pairs or RELATED)]
  return {"d_model": int(table.shape[1]),
          "random_pairs": {"mean": float(rand.mean()), "std": float(rand.std(ddof=1)), "n": int(rand.size)},
          "adjacent": {"mean": float(adjacent.mean()), "std": float(adjacent.std(ddof=1)), "n": int(adjacent.size),
                       "cohens_d": float((adjacent.mean() - rand.mean()) / pooled)},
          "pairs": pairs}


def letters() -> dict:
  """Letters against subwords along the granularity curve, from its committed results.csv and
  documents.json: bytes per token, training FLOPs per byte of text, and where (in FLOPs) each
  subword arm is below char by the bootstrap over the held-out plays."""
  from llm_input.analysis import budgets  # noqa: PLC0415

  data = budgets.read_results(CURVE_DIR / "results.csv", "tokenizer.kind")
  records = budgets.documents_bundle(CURVE_DIR / "documents.json", GRANULARITY_CURVE, [r["run"] for r in data])
  tests = (budgets.tests_by_budget(data) if len({r["seed"] for r in data}) > 1
           else budgets.bootstrap_tests_by_budget(data, records))
  grid = sorted({r["budget"] for r in data})
  ranges = [{**r, "span": budgets.flops_span(r["from_budget"], grid)} for r in budgets.holding_ranges(tests)]
  arms = {}
  for r in data:
    a = arms.setdefault(r["arm"], {"bytes_per_token": r["bytes_per_token"], "points": []})
    a["points"].append({"budget": r["budget"], "steps": r["steps"], "bits_per_byte": r["val_bits_per_byte"],
                        "flops_per_byte": r["train_flops"] / (r["steps"] * 16 * 256 * r["bytes_per_token"])})
  for a in arms.values():
    a["points"].sort(key=lambda p: p["budget"])
  return {"arms": arms, "ranges": ranges, "budgets": grid, "seeds": sorted({r["seed"] for r in data})}


VOCAB_CURVE_DIR = HERE.parent / "vocab_size" / "curve"  # its committed results.csv and documents.json


def vocab_sweet_spot() -> dict:
  """bpe at 1k, 4k, 16k and 50k along the vocab_size curve (7.09e12-7.09e13 FLOPs, seed 0),
  from its committed results.csv and documents.json: bits per byte per budget, each arm's own
  best Kneser-Ney n-gram, and where each difference holds (bootstrap over the held-out plays)."""
  from llm_input.analysis import budgets  # noqa: PLC0415

  data = budgets.read_results(VOCAB_CURVE_DIR / "results.csv", "tokenizer.vocab_size", int)
  records = budgets.documents_bundle(VOCAB_CURVE_DIR / "documents.json", VOCAB_CURVE, [r["run"] for r in data])
  label = "{:,}".format
  tests = (budgets.tests_by_budget(data, label=label) if len({r["seed"] for r in data}) > 1
           else budgets.bootstrap_tests_by_budget(data, records, label=label))
  grid = sorted({r["budget"] for r in data})
  ranges = [{**r, "span": budgets.flops_span(r["from_budget"], grid)} for r in budgets.holding_ranges(tests)]
  arms: dict = {}
  for r in data:
    a = arms.setdefault(label(r["arm"]), {"kn_best": r.get("kn_best_bits_per_byte"), "steps": {}, "points": {}})
    a["steps"][str(r["budget"])] = r["steps"]
    a["points"][str(r["budget"])] = r["val_bits_per_byte"]
  out = {"arms": arms, "ranges": ranges, "budgets": grid, "seeds": sorted({r["seed"] for r in data})}
  # "50k loses" with 50k at a better rate: its five seeds at 1e-3 (`--arg lr_seeds`) against
  # every arm's five seeds at the curve's 3e-3 (`--arg seeds`), paired by seed
  lr_seeds, seeds = VOCAB_CURVE_DIR.parent / "lr_seeds" / "results.csv", VOCAB_CURVE_DIR.parent / "seeds" / "results.csv"
  if lr_seeds.exists() and seeds.exists():
    rows = budgets.read_results(lr_seeds, "tokenizer.vocab_size", int)
    low = {r["seed"]: r["val_bits_per_byte"] for r in rows}
    five = budgets.read_results(seeds, "tokenizer.vocab_size", int)
    out["better_rate"] = {
        "arm": "50,000", "rate": float(rows[0]["optimizer.learning_rate"]),
        "budget": five[0]["budget"], "values": [low[k] for k in sorted(low)],
        "others": {label(arm): [next(r["val_bits_per_byte"] for r in five if r["arm"] == arm and r["seed"] == k)
                                for k in sorted(low)] for arm in sorted({r["arm"] for r in five})}}
  return out


DEPTH_DIR = HERE.parent / "depth"  # its committed results.csv


def depth() -> dict:
  """1, 2, 4 and 8 layers at equal training FLOPs (experiments/depth, 3 seeds), from its
  committed results.csv: bits per byte per seed, steps, and the paired tests between arms."""
  from llm_input.analysis import budgets, stats  # noqa: PLC0415

  data = budgets.read_results(DEPTH_DIR / "results.csv", "model.num_layers", int)
  arms: dict = {}
  for r in sorted(data, key=lambda r: (r["arm"], r["seed"])):
    a = arms.setdefault(str(r["arm"]), {"steps": r["steps"], "params": r["params"], "kn_best": r.get("kn_best_bits_per_byte"),
                                        "values": []})
    a["values"].append((r["seed"], r["val_bits_per_byte"]))
  pairs = stats.pairwise({k: v["values"] for k, v in arms.items()})
  keep = ("a", "b", "diff", "ci_low", "ci_high", "p", "p_wilcoxon", "p_holm", "distinguishable", "detectable")
  out = {"budget_flops": data[0]["budget"], "arms": arms, "pairwise": [{k: p.get(k) for k in keep} for p in pairs]}
  lr = DEPTH_DIR / "lr" / "results.csv"
  if lr.exists():  # seed 0 of each depth at 1e-3 and 1e-2 beside the sweep's 3e-3 (`--arg lr`)
    rates: dict = {}
    points = budgets.rate_points(budgets.read_results(lr, "model.num_layers", int), data, 3e-3)
    for (arm, rate), value in sorted(points.items()):  # each depth's rates in increasing order
      rates.setdefault(str(arm), {})[f"{rate:g}"] = value
    out["rates"] = rates
  return out


def _ms(d: dict, digits: int = 3) -> str:
  return f"{d['mean']:.{digits}f} ± {d['std']:.{digits}f} (n={d['n']})"


def table(r: dict, imported: dict | None = None) -> str:
  """One row per claim: the claim, where it is checked, the measured figure with its spread,
  a verdict that follows from the figures by the rule stated in the row, and the command; with
  `imported` (`one_run`'s figures of an imported model, e.g. GPT-2), a last column of what that
  model says about each claim (`one_model_cells`)."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415
  from llm_input.analysis import stats  # noqa: PLC0415

  cmd = "`python experiments/claims/claims.py`"
  rows = []
  tpw = r["tokens_per_word"]
  shakespeare = tpw["shakespeare_validation"]["tokens_per_word"]
  modern = tpw["modern_english"]["tokens_per_word"]
  verdict = rules.near(modern, 1.3, 0.15, "tokens per word on modern English")
  rows.append(("~1.3 tokens per English word with a ~50k vocabulary",
               "bpe at 50,000 trained on Shakespeare (train split), measured on held-out text",
               f"{shakespeare:.3f} tokens per word on Shakespeare's validation split; {modern:.3f} on "
               f"modern English (CPython {tpw['python']}'s `pydoc_data.topics`, 65,501 words)",
               verdict, cmd + "; `experiments/vocab_size/tokenizer_table.md` for 1k-50k"))
  lw = r["letters_and_words"]
  unk_words = [w for w, pieces in lw["word"].items() if pieces == ["<unk>"]]
  rows.append(('Letters make "Hello" 5 tokens; a word vocabulary fails on typos and rare words',
               "the granularity runs' char and word (8,192) tokenizers",
               f'char: "Hello" -> {len(lw["char_hello"])} tokens {lw["char_hello"]}; word: '
               f'{", ".join(unk_words)} -> `<unk>`; {100 * lw["word_validation"]["unk_rate"]:.2f}% of '
               f'validation tokens and {100 * lw["word_validation"]["words_with_unk_rate"]:.1f}% of its words are `<unk>`',
               "holds" if len(lw["char_hello"]) == 5 and {"Helo", "hte"} <= set(unk_words) else "does not hold",
               cmd))
  e = r["embeddings"]
  kq0, kq200 = e["step0"]["pairs"]["king/queen"], e["step200"]["pairs"]["king/queen"]
  hh0 = e["step0"]["pairs"]["Hello/hello"]
  pct = e["step200"]["percentile_among_random_pairs"]["king/queen"]
  spread = 1 / math.sqrt(e["d_model"])
  single = {k: v for k, v in e["step0"]["pairs"].items() if all(len(x) == 1 for x in e["pieces"][k])}
  at_init = ", ".join(f"{k} {v['mean']:+.3f}" for k, v in single.items())
  start = (f"every single-token pair starts within 1/sqrt(d) = {spread:.3f} of 0 ({at_init})"
           if all(abs(v["mean"]) < spread for v in single.values()) else
           f"some single-token pair starts farther than 1/sqrt(d) = {spread:.3f} from 0")
  rand0, rand200 = e["step0"]["random_pair_mean"], e["step200"]["random_pair_mean"]
  rows.append(("Random embeddings start unrelated; training makes similar words close "
               '("Hello"/"hello", king/queen)',
               "the tied embedding tables of the 3 positions-learned runs (bpe 4096, d_model "
               f"{e['d_model']}) at step 0 and step 200; a word cut into pieces is the mean of its pieces",
               f"king/queen cosine {_ms(kq0)} at step 0 (random pairs {_ms(rand0, 4)}, spread 1/sqrt(d) = "
               f"{1 / math.sqrt(e['d_model']):.3f}) -> {_ms(kq200)} at step 200, but random pairs also rise to "
               f"{_ms(rand200)}: king/queen sits at the {pct['mean']:.0f}th ± {pct['std']:.0f} percentile of "
               f"random pairs. Hello/hello ({'+'.join(e['pieces']['Hello/hello'][0])} vs "
               f"{'+'.join(e['pieces']['Hello/hello'][1])}) starts at {_ms(hh0)}: they share the piece 'o'. "
               "Every pair's percentile among random pairs at step 200: " + ", ".join(
                   f"{k} {v['mean']:.0f}th ± {v['std']:.0f}" for k, v in e["step200"]["percentile_among_random_pairs"].items()),
               f"start: {start}; after 200 steps: "
               + rules.percentiles({k: v["mean"] for k, v in e["step200"]["percentile_among_random_pairs"].items()}),
               cmd))
  perm = r["permutation"]
  rows.append(("Without positions, attention is permutation-invariant (shuffling the words "
               "shuffles the outputs, nothing else changes)",
               "the 3 positions-none runs, 64 random tokens, shuffled; also `tests/test_model.py` and "
               "the order probe",
               f"max |logits(shuffled) - shuffled(logits)|: {perm['causal=False']['mean']:.1e} without the "
               f"causal mask (logits up to {perm['logit_scale']:.1f}); {_ms(perm['causal=True'])} with it",
               rules.permutation_invariant(perm["causal=False"]["values"], perm["causal=True"]["values"],
                                           perm["logit_scale"]),
               cmd + "; `python experiments/positions/order_probe.py`"))
  rows.append(scale_row(r["attention_scale"]))
  rows.append(layer_row(r["layer_distance"]))
  rows.append(heads_row(r["head_diversity"]))
  rows.append(depth_row(r["depth"]))
  rows.append(mixing_row(r["mixing"]))
  rows.append(vocab_row(r["vocab_sweet_spot"]))
  br = r["bank_river"]
  parts, verdicts = [], []
  for arm in ("learned", "rope"):
    river, road, house = br[arm]["river"], br[arm]["road"], br[arm]["house"]
    # The same models read both sentences: paired over seeds.
    c = stats.compare(river["max_head"]["values"], road["max_head"]["values"], paired=True)
    verdicts.append(f"{arm}: " + rules.difference(c, "higher", "river -> bank", "road -> bank"))
    parts.append(f"{arm}: strongest head {_ms(river['max_head'], 2)} vs {_ms(road['max_head'], 2)} "
                 f"for road -> bank and {_ms(house['max_head'], 2)} for "
                 f"river -> house; mean over heads {river['mean_heads']['mean']:.2f} vs uniform "
                 f"{river['uniform']:.2f}")
  rows.append(('In "The bank by the river", "bank" attends to "river"',
               'attention of the 3 learned-position and 3 rope runs; in a causal model "bank" cannot see '
               '"river" (it comes later), so the reverse is measured: weight from the last piece of '
               '"river" to the pieces of "bank" (▁ban+k), against "The bank by the road" and '
               '"The house by the river"',
               "; ".join(parts),
               "; ".join(verdicts) + " (a causal model's \"bank\" cannot see \"river\", so the reverse "
               "weight is what is measured)", cmd))
  g = r["granularity"]
  arms = g["arms"]
  kinds = [k for k in ("char", "byte", "bpe", "unigram", "word") if k in arms]
  figure = "; ".join(f"{k} {arms[k]['val_bits_per_byte'][0]:.3f} ± {arms[k]['val_bits_per_byte'][1]:.3f} "
                     f"(n={arms[k]['n']})" for k in kinds)
  decided = {frozenset((p["a"], p["b"])): p for p in g["pairwise"]}
  letter_pairs = [decided.get(frozenset((c, sw)), {}) for c in ("char", "byte") for sw in ("bpe", "unigram")]
  subword_beats_letters = all(p.get("distinguishable") and p["diff"] * (1 if p["a"] in ("char", "byte") else -1) > 0
                              for p in letter_pairs)
  mean = {k: arms[k]["val_bits_per_byte"][0] for k in kinds}
  gaps = [mean[c] - mean[sw] for c in ("char", "byte") for sw in ("bpe", "unigram") if c in mean and sw in mean] or [0.0]
  word, unk = mean.get("word", float("nan")), arms.get("word", {}).get("unk_rate", float("nan"))
  holm = max((p["p_holm"] for p in letter_pairs if p), default=float("nan"))
  curve = ""
  if "letters" in r:  # the same pairs along the curve (letters(): its ranges over budgets)
    lt = r["letters"]
    whole = [x for x in lt["ranges"] if x["lower"] in ("bpe", "unigram") and x["higher"] in ("char", "byte")
             and x["from_budget"] == lt["budgets"][0]]
    curve = (f" (along the curve, seed {', '.join(map(str, lt['seeds']))}: {len(whole)} of the 4 pairs at every "
             f"budget from {lt['budgets'][0]:.3g} to {lt['budgets'][-1]:.3g} FLOPs)")
  rows.append(("Subwords are the sweet spot between characters and words at equal compute",
               f"`experiments/granularity`, the curve's 2x point ({g['budget_flops']:.3g} training FLOPs; "
               + ", ".join(f"{k} {arms[k]['steps']} steps at {arms[k]['learning_rate']:g}" for k in kinds)
               + f"), {min(a['n'] for a in arms.values())} seeds, three held-out plays",
               figure + " validation bits per byte",
               (f"holds against letters at this budget: bpe and unigram are below char and byte in all 4 pairs "
                f"(paired t, Holm p <= {holm:.2g}), by {min(gaps):.2f}-{max(gaps):.2f} bits per byte{curve}; "
                "against words not decidable: the word "
                f"model's {word:.3f} is not comparable, since {100 * unk:.1f}% of its validation tokens are `<unk>`, "
                "one cheap prediction standing for a whole unknown word's bytes")
               if subword_beats_letters else
               "not detected: some subword arm is not below some letter arm after Holm's correction",
               "`llm-input sweep experiments/granularity/sweep.py --arg seeds --table ...`; "
               "`python experiments/claims/claims.py --only granularity`"))
  rows += curve_rows(r, cmd)
  header = ["claim", "where it is checked", "measured (mean ± std over seeds)", "verdict", "command"]
  if imported is not None:
    cells = one_model_cells(imported)
    unknown = set(cells) - {row[0] for row in rows}
    if unknown:
      raise ValueError(f"one_model_cells names claims the table does not have: {sorted(unknown)}")
    rows = [(*row, cells.get(row[0], "not measured on one model")) for row in rows]
    header.append(f"on the imported model (`{imported['run']}`, {imported['vocab_size']:,}-id "
                  f"{imported['tokenizer']}, d_model {imported['d_model']})")
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def scale_row(a: dict) -> tuple:
  """The sqrt(d_k) row: unit-variance scores at init, and models trained with and without the
  scale at three head sizes (paired over seeds, Holm across the sizes)."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415
  from llm_input.analysis import stats  # noqa: PLC0415

  init = {int(d): v for d, v in a["init"].items()}
  bpb = a["bits_per_byte"]
  sizes = sorted(int(d) for d in bpb)
  longest = str(max(int(s) for s in bpb[str(sizes[0])]["sqrt"]))
  tests, saturation, parts = {}, {}, []
  for d in sizes:
    seeds = sorted(set(bpb[str(d)]["sqrt"][longest]) & set(bpb[str(d)]["none"][longest]), key=int)
    with_scale = [bpb[str(d)]["sqrt"][longest][s] for s in seeds]
    without = [bpb[str(d)]["none"][longest][s] for s in seeds]
    tests[d] = stats.compare(without, with_scale, paired=True)
    att = a["attention"].get(str(d), {})
    peaked = ""
    if {"sqrt", "none"} <= set(att):
      both = sorted(set(att["sqrt"]["seeds"]) & set(att["none"]["seeds"]))
      share = {k: dict(zip(att[k]["seeds"], att[k]["rows_over_0.9"]["values"])) for k in ("sqrt", "none")}
      saturation[d] = stats.compare([share["none"][s] for s in both], [share["sqrt"][s] for s in both], paired=True)
      peaked = (f", rows with a weight > 0.9 {100 * att['none']['rows_over_0.9']['mean']:.0f}% vs "
                f"{100 * att['sqrt']['rows_over_0.9']['mean']:.0f}%, entropy {att['none']['entropy']['mean']:.2f} vs "
                f"{att['sqrt']['entropy']['mean']:.2f} nats")
    parts.append(f"d_head {d}: {np.mean(without):.3f} ± {np.std(without, ddof=1):.3f} unscaled vs "
                 f"{np.mean(with_scale):.3f} ± {np.std(with_scale, ddof=1):.3f} scaled (n={len(seeds)}){peaked}")
  label = "d_head {}".format
  biggest = init[max(init)]
  uniform = biggest["sqrt"]["uniform_entropy"]
  measured = (f"at init (unit-variance q, k; one query over 128 keys): softmax entropy (uniform = {uniform:.2f} nats) "
              + ", ".join(f"d_k {d} {init[d]['none']['entropy']:.2f} unscaled vs {init[d]['sqrt']['entropy']:.2f} scaled"
                          for d in sorted(init))
              + f". Trained {longest} steps, validation bits per byte (trained attention on 16 validation sequences: "
              "unscaled vs scaled): " + "; ".join(parts))
  verdict = rules.saturates_with_dimension(init)
  if saturation:
    verdict += (". Trained, the share of rows with a weight > 0.9: "
                + rules.costs_per_size(saturation, "unscaled", "scaled", label, raises="raises it by", lowers="lowers it by"))
  verdict += ". Trained, the loss: " + rules.costs_per_size(tests, "unscaled", "scaled", label)
  return ("Dividing scores by sqrt(d_k) keeps the softmax from saturating",
          "unit-variance scores at d_k 8, 32, 128; and `experiments/attention_scale`: the tiny model (d_model 128) "
          f"with 16, 4 and 1 heads (d_head 8, 32, 128) trained with and without the scale, {len(seeds)} seeds, "
          f"{longest} steps ({a['train_flops'][longest]:.3g} FLOPs), three held-out plays",
          measured, verdict,
          "`llm-input sweep experiments/attention_scale/sweep.py` (+ `--table ...`); "
          "`python experiments/claims/claims.py --only attention_scale`")


def layer_row(ld: dict) -> tuple:
  """Early layers local, later global: the first layer's mean attention distance against the
  last layer's, paired over the models of each group."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415
  from llm_input.analysis import stats  # noqa: PLC0415

  shown, verdicts = [], []
  for group, models in ld["groups"].items():
    first = [m["distance"][0] for m in models]
    last = [m["distance"][-1] for m in models]
    layers = len(models[0]["distance"])
    mean = np.mean([m["distance"] for m in models], axis=0)
    entropy = np.mean([m["entropy"] for m in models], axis=0)
    shown.append(f"{group}, {len(models)} models: distance per layer (mean) {' / '.join(f'{v:.1f}' for v in mean)} "
                 f"tokens, entropy {' / '.join(f'{v:.2f}' for v in entropy)} nats" +
                 (" (" + "; ".join(f"{m['model']} {' / '.join(f'{v:.0f}' for v in m['distance'])}" for m in models) + ")"
                  if len(models) <= 8 else ""))
    verdicts.append(f"{group}: " + rules.difference(stats.compare(first, last, paired=True), "lower",
                                                    "layer 1's distance", f"layer {layers}'s"))
  return ("Early layers attend locally, later layers globally",
          "mean attention distance (weight x tokens back, averaged over a layer's heads) of 4-layer tiny models on "
          "32 whole validation windows of 256 tokens, paired over the models of a group: the heads experiment's "
          "12 models at 400 steps (1, 2, 4, 8 heads x 3 seeds) and the 8 seed-0 models at 10x the budget "
          "(granularity and vocab_size curves: five granularities, bpe at 1k-50k)",
          "; ".join(shown) + f"; attention spread evenly would be {ld['uniform_distance']:.2f} tokens back",
          "; ".join(verdicts),
          "`python experiments/claims/claims.py --only layer_distance`; `python experiments/heads/head_probe.py`")


def depth_row(dp: dict) -> tuple:
  """More layers at equal compute: each doubling of depth judged by its paired, Holm-corrected
  test."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415

  order = sorted(dp["arms"], key=int)
  shown = "; ".join(f"{k} layer{'s' if k != '1' else ''}: {np.mean([v for _, v in dp['arms'][k]['values']]):.3f} ± "
                    f"{np.std([v for _, v in dp['arms'][k]['values']], ddof=1):.3f} ({dp['arms'][k]['steps']} steps)"
                    for k in order)
  kn = min(a["kn_best"] for a in dp["arms"].values() if a.get("kn_best"))
  rate_figure = rate_verdict = ""
  if "rates" in dp:  # is the order the one shared rate's doing? each depth at its best rate, seed 0
    best = {k: min(dp["rates"][k].items(), key=lambda kv: kv[1]) for k in order}
    tried = sorted({float(rate) for k in order for rate in dp["rates"][k]})
    rate_figure = (f"; seed 0 at each depth's best peak rate of {' / '.join(f'{t:g}' for t in tried)}: "
                   + ", ".join(f"{k}: {best[k][1]:.3f} ({best[k][0]})" for k in order))
    at_shared = sorted(order, key=lambda k: np.mean([v for _, v in dp["arms"][k]["values"]]))
    at_best = sorted(order, key=lambda k: best[k][1])
    rate_verdict = (f"; at each depth's best rate (seed 0, one run each) the order is {' < '.join(at_best)} layers"
                    + (" (as at 3e-3)" if at_best == at_shared else f" (at 3e-3: {' < '.join(at_shared)})"))
  return ("More layers build deeper understanding (\"why multiple layers?\")",
          f"`experiments/depth`: the tiny model (d_model 128, 4 heads) with {', '.join(order)} layers at equal training "
          f"FLOPs ({dp['budget_flops']:.3g}: a deeper model trains fewer steps), 3 seeds paired (Holm over all "
          f"{len(dp['pairwise'])} pairs), three held-out plays",
          f"validation bits per byte {shown}; the tokens' best KN n-gram {kn:.3f}" + rate_figure,
          rules.ordered(dp["pairwise"], order) + rate_verdict,
          "`llm-input sweep experiments/depth/sweep.py` (+ `--table ...`); `python experiments/claims/claims.py --only depth`")


def heads_row(hd: dict) -> tuple:
  """Heads look at different keys: the layer-mean divergence between a layer's heads, trained
  against the same models at init, paired over the models."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415
  from llm_input.analysis import stats  # noqa: PLC0415

  trained, init, shown = [], [], []
  for heads, d in hd.items():
    trained += [float(np.mean(v)) for v in d["trained"]]
    init += [float(np.mean(v)) for v in d["init"]]
    per_layer = np.mean(d["trained"], axis=0)
    shown.append(f"{heads} heads ({len(d['trained'])} seeds): trained {' / '.join(f'{v:.3f}' for v in per_layer)} per layer, "
                 f"at init {' / '.join(f'{v:.4f}' for v in np.mean(d['init'], axis=0))}")
  return ("Different heads capture different relations",
          "Jensen-Shannon divergence between the attention of every pair of a layer's heads (0: the same keys, "
          "ln 2 = 0.693: disjoint keys; a proxy: different keys, not named relations) on 32 whole validation "
          "windows: the tiny model with 4 and 16 heads trained 400 steps (experiments/attention_scale, scaled "
          "arm) against the same configs and seeds at initialisation, paired over the models; the heads "
          "experiment's 1-8 heads in `experiments/heads/head_stats.md`",
          "; ".join(shown),
          rules.difference(stats.compare(trained, init, paired=True), "higher",
                           "the trained heads' divergence (mean over layers)", "at init"),
          "`python experiments/claims/claims.py --only head_diversity`")


def mixing_row(mx: dict) -> tuple:
  """Attention moves other positions, the MLP only its own: each sublayer's relative output change
  at the later positions against its change at the perturbed one."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415

  verdict = rules.mixes_across(mx["attention_other"]["values"], mx["attention_self"]["values"],
                               mx["mlp_other"]["values"], mx["mlp_self"]["values"])
  return ("Attention moves information between tokens; the MLP works on each token alone",
          f"perturbation test on the tiny model trained 400 steps with the scale (3 seeds): at each layer's input, "
          f"position {mx['position']}'s vector moved by 10% of its norm in a random direction; each sublayer's "
          "output change, relative to its output's size, at that position and (mean) at every later one",
          f"attention: {_ms(mx['attention_self'], 4)} at the position, {_ms(mx['attention_other'], 4)} at later "
          f"positions; MLP: {_ms(mx['mlp_self'], 4)} at the position, {_ms(mx['mlp_other'], 4)} at later positions",
          verdict, "`python experiments/claims/claims.py --only mixing`")


def vocab_row(v: dict) -> tuple:
  """"Why 50,000 tokens? It's a sweet spot": 50k against 1k, 4k and 16k along the vocab_size
  curve, and which size is below the others instead; with 50k at the rate its sweep liked."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415
  from llm_input.analysis import stats  # noqa: PLC0415

  grid = v["budgets"]
  largest = f"{grid[-1]:.3g} FLOPs"
  names = list(v["arms"])
  shown = "; ".join(f"{name} " + " -> ".join(f"{v['arms'][name]['points'][str(b)]:.3f}" for b in grid)
                    + f" ({v['arms'][name]['steps'][str(grid[0])]}-{v['arms'][name]['steps'][str(grid[-1])]} steps, "
                    f"own best KN n-gram {v['arms'][name]['kn_best']:.3f})" for name in names)
  best = [rules.sweet_spot(v["ranges"], name, names, largest) for name in names]
  found = [f"{name}: {text}" for name, text in zip(names, best) if text.startswith("holds")]
  rate_figure = rate_verdict = ""
  if "better_rate" in v:  # 50k at the rate its sweep liked, five seeds, against the others at 3e-3
    br = v["better_rate"]
    tests = stats.against_each(br["values"], br["others"])
    holm = {arm: t["p_holm"] for arm, t in tests.items()}
    rate_figure = (f"; at {br['budget']:.3g} FLOPs, {br['arm']} at peak rate {br['rate']:g} (its best of the rate sweep, "
                   f"5 seeds) {np.mean(br['values']):.3f} ± {np.std(br['values'], ddof=1):.3f} vs the others at 3e-3: "
                   + ", ".join(f"{arm} {np.mean(vals):.3f}" for arm, vals in br["others"].items() if arm != br["arm"])
                   + (f" (its own five seeds at 3e-3: {np.mean(br['others'][br['arm']]):.3f}, the better rate "
                      f"{tests[br['arm']]['diff']:+.3f}, Holm p {holm[br['arm']]:.2g})" if br["arm"] in tests else ""))
    above = [arm for arm, t in tests.items() if arm != br["arm"] and holm[arm] < stats.ALPHA and t["diff"] > 0]
    rest = [arm for arm in tests if arm not in above and arm != br["arm"]]
    rate_verdict = (f"; with {br['arm']} at {br['rate']:g} (paired over 5 seeds, Holm): still above "
                    + (", ".join(above) or "none of the others")
                    + (f", not detected against {', '.join(rest)}" if rest else ""))
  return ('"Why 50,000 tokens? It\'s a sweet spot"',
          "`experiments/vocab_size` curve: bpe at " + ", ".join(names) + f" ids, the tiny model at {len(grid)} budgets "
          f"{grid[0]:.3g}-{grid[-1]:.3g} FLOPs (each arm warmed up for a quarter of its own 1x run, annealed), "
          f"seed {', '.join(map(str, v['seeds']))}, three held-out plays (bootstrap over them); a 4.9 MB corpus and a "
          "0.8M-parameter body under the embedding and head, not the scale the claim is about",
          "validation bits per byte from the smallest to the largest budget: " + shown + rate_figure,
          rules.sweet_spot(v["ranges"], "50,000", names, largest) + rate_verdict
          + (". Instead " + "; ".join(found) if found else ""),
          "`llm-input sweep experiments/vocab_size/sweep.py --arg curve ...`; "
          "`python experiments/claims/claims.py --only vocab_sweet_spot`")


def curve_rows(r: dict, cmd: str) -> list[tuple]:
  """The rows read from the granularity curve's runs (`vocabulary`, `trained_tables`, `letters`)."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415

  rows = []
  where_tok = ("the granularity curve's tokenizers, trained on its 35 training plays: word (8,192 entries), "
               "bpe and unigram (4,096)")
  if "vocabulary" in r:
    v = r["vocabulary"]
    forms = v["forms"]
    shown = "; ".join(f"{k}: " + ", ".join("+".join(p) for p in forms[k].values()) for k in ("word", "bpe", "unigram"))
    rows.append(('Words: "Every verb form needs its own entry: run, runs, ran, running"', where_tok,
                 f"{shown}. {v['inflected']:,} of the word vocabulary's {v['word_alpha_entries']:,} word entries "
                 f"({100 * v['inflected'] / v['word_alpha_entries']:.0f}%) are another entry plus an ending "
                 f"({', '.join('-' + x.replace('e+', '(e)') for x in v['inflections'])}), e.g. {', '.join(v['inflected_examples'][:8])}",
                 rules.own_entries(forms["word"]), "`python experiments/claims/claims.py --only vocabulary`"))
    b, u = v["bpe"], v["unigram"]
    rows.append(('Subwords: "Similar words might split differently"',
                 where_tok + "; every lower-case word of 3+ letters of the three held-out plays whose capitalised "
                 "form (or -s form) also occurs there",
                 f"a word and its capitalised form cut at different places: bpe {b['case_split']} of {b['case_pairs']}, "
                 f"unigram {u['case_split']} of {u['case_pairs']} (e.g. {'; '.join(b['case_examples'][:3])}); a word's "
                 f"pieces not kept in its -s form: bpe {b['plural_split']} of {b['plural_pairs']}, unigram "
                 f"{u['plural_split']} of {u['plural_pairs']} (e.g. {'; '.join(b['plural_examples'][:3])})",
                 "bpe: " + rules.happens(b["case_split"], b["case_pairs"], "case pairs split differently")
                 + "; unigram: " + rules.happens(u["case_split"], u["case_pairs"], "case pairs split differently"),
                 "`python experiments/claims/claims.py --only vocabulary`"))
  if "trained_tables" in r:
    t = r["trained_tables"]
    where = (f"the tied embedding tables of the granularity curve's bpe and unigram runs at 10x its budget "
             f"({t['bpe']['step']:,} steps, 7.09e13 FLOPs, seed 0; d_model {t['bpe']['d_model']}), ids past the 4 special ones")
    rand = "; ".join(f"{k} {t[k]['random_pairs']['mean']:+.3f} ± {t[k]['random_pairs']['std']:.3f} "
                     f"({t[k]['random_pairs']['n']:,} pairs)" for k in ("bpe", "unigram"))
    spread = 1 / math.sqrt(t["bpe"]["d_model"])
    rows.append(('"Unrelated tokens have similarity close to 0"', where,
                 f"cosine of random pairs of ids: {rand}; at initialisation 0 ± 1/sqrt(d) = {spread:.3f}",
                 "; ".join(f"{k}: " + rules.near(t[k]["random_pairs"]["mean"], 0.0, round(spread, 3),
                                                  "mean cosine of random pairs") for k in ("bpe", "unigram")),
                 "`python experiments/claims/claims.py --only trained_tables`"))
    rows.append(('Token ids are "just unrelated numbers" (neighbouring ids mean nothing)', where,
                 "cosine of ids i and i+1: " + "; ".join(
                     f"{k} {t[k]['adjacent']['mean']:+.3f} ± {t[k]['adjacent']['std']:.3f} ({t[k]['adjacent']['n']:,} "
                     f"pairs) vs random {t[k]['random_pairs']['mean']:+.3f}" for k in ("bpe", "unigram")),
                 "; ".join(f"{k}: " + rules.negligible(t[k]["adjacent"]["cohens_d"], "neighbouring ids")
                           for k in ("bpe", "unigram")),
                 "`python experiments/claims/claims.py --only trained_tables`"))
    shown = "; ".join(f"{k}: " + ", ".join(
        f"{p['a']}/{p['b']} {p['cosine']:+.2f} ({rules.ordinal(p['percentile'])})" for p in t[k]["pairs"] if p["cosine"] is not None)
        for k in ("bpe", "unigram"))
    rows.append(('"The model learns these relationships" (king/queen, run/running) with 10x the training', where
                 + "; a word cut into pieces is the mean of its pieces",
                 f"cosine (percentile among random pairs): {shown}",
                 "; ".join(f"{k}: " + rules.percentiles({f"{p['a']}/{p['b']}": p["percentile"] for p in t[k]["pairs"]
                                                         if p["percentile"] is not None}) for k in ("bpe", "unigram")),
                 "`python experiments/claims/claims.py --only trained_tables`"))
  if "letters" in r:
    g = r["letters"]
    arms = g["arms"]
    grid = g["budgets"]
    largest = f"{grid[-1]:.3g} FLOPs"
    first = {k: a["points"][0] for k, a in arms.items()}
    figure = (f"bytes per token: " + ", ".join(f"{k} {arms[k]['bytes_per_token']:.2f}" for k in ("char", "bpe", "unigram"))
              + "; training FLOPs per byte of text: " + ", ".join(f"{k} {first[k]['flops_per_byte']:.3g}"
                                                                  for k in ("char", "bpe", "unigram"))
              + "; validation bits per byte from 1x to 10x: " + "; ".join(
                  f"{k} " + " -> ".join(f"{p['bits_per_byte']:.3f}" for p in arms[k]["points"]) for k in ("char", "bpe", "unigram")))
    rows.append(('Letters: "Very inefficient. Long sequences are slow to process"',
                 f"`experiments/granularity` curve: the tiny model at {grid[0]:.3g}-{grid[-1]:.3g} training FLOPs, "
                 f"seed {', '.join(map(str, g['seeds']))}, three held-out plays (decided by the bootstrap over them "
                 "when there is one seed)", figure,
                 "; ".join(rules.over_budgets(g["ranges"], sw, "char", largest) for sw in ("bpe", "unigram")),
                 "`python experiments/granularity/curve_figures.py`"))
  return rows


# -- the claims on one model (an imported Hugging Face model or any run) ---------------------
def _text_ids(run, rows: int = 4, length: int = 128) -> np.ndarray:
  """`rows` windows of `length` tokens of modern English (no corpus needed)."""
  context = run.sampler.context
  length = min(length, context)
  ids = [i for text in modern_english()[:200] for i in run.tokenizer.encode(text)]
  return np.asarray(ids[: rows * length], np.int32).reshape(rows, length)


def _without_positions(run):
  cfg = dataclasses.replace(run.model_cfg, positions="none", causal=False, attention_impl="reference")
  params = {k: v for k, v in run.params.items() if k != "positions"}
  return dataclasses.replace(run, model_cfg=cfg, params=params).model()


def one_run(workdir) -> dict:
  """Every claim that one model can speak to, measured on it."""
  from llm_input.analysis import attention  # noqa: PLC0415

  run = run_lib.load_run(workdir)
  tok = run.tokenizer
  out: dict = {"run": str(run.folder), "state": run.folder.state(), "tokenizer": tok.kind,
               "vocab_size": tok.vocab_size, "d_model": run.model_cfg.d_model,
               "d_head": run.model_cfg.d_head, "python": platform.python_version()}
  english = modern_english()
  out["modern_english"] = stats_lib.compute(tok, english).to_dict()
  out["hello"] = {w: {"ids": tok.encode(w), "pieces": [tok.id_to_piece(i) for i in tok.encode(w)]}
                  for w in ("Hello", "hello", " Hello", " hello")}
  out["forms"] = {f: _pieces(tok, f) for f in FORMS}
  out["splits"] = _splits(tok, _word_counts([w for text in english for w in re.findall(r"[A-Za-z]+", text)]))
  table = np.asarray(run.params["embedding"]["table"], np.float64)[: tok.vocab_size]
  out["table"] = _table_stats(table, tok, first=0, pairs=RELATED + (("bank", "river"),))
  # attention distance, entropy and head divergence per layer; the perturbation test
  text = _text_ids(run)
  model = run.model()
  _, weights = model(jnp.asarray(text), return_attention=True)
  st = attention.head_statistics(weights, np.ones(text.shape, np.int32))
  out["layers"] = {"distance": st["distance"].mean(1).tolist(), "entropy": st["entropy"].mean(1).tolist(),
                   "head_divergence": [None if np.isnan(v) else float(v) for v in st["head_divergence"]],
                   "uniform_distance": (text.shape[1] - 1) / 4, "tokens": list(text.shape)}
  where = min(32, text.shape[1] // 2)
  out["mixing"] = {**_mixing_ratios(model, text, np.random.default_rng(0), where), "position": where}
  # permutation: up to 64 ids shuffled, with the model's own positions and causal mask, and
  # without both
  rng = np.random.default_rng(0)
  n = min(64, run.sampler.context)
  ids = rng.integers(0, tok.vocab_size, size=(1, n)).astype(np.int32)
  perm = rng.permutation(n)
  out["permutation_tokens"] = n
  for name, variant in (("own", model), ("none_bidirectional", _without_positions(run))):
    logits = np.asarray(variant(jnp.asarray(ids)))
    permuted = np.asarray(variant(jnp.asarray(ids[:, perm])))
    out.setdefault("permutation", {})[name] = float(np.abs(permuted - logits[:, perm]).max())
  out["permutation"]["logit_scale"] = float(np.abs(logits).max())
  # sqrt(d_k): the model's scores and the same scores times sqrt(d_head)
  scaled, unscaled = _scaled_and_unscaled(run, text)
  out["scaling"] = {"scaled": scaled, "unscaled": unscaled, "tokens": list(text.shape)}
  # "The bank by the river": weight from the last piece of the last word to the second word
  for name, sentence in SENTENCES.items():
    maps = attention.attention_maps(model, tok, sentence, bool(run.config.data.add_bos))
    spans = _word_spans(maps["tokens"])
    query, keys = spans[-1][-1], spans[1]
    w = maps["weights"][:, :, query, keys].sum(-1)
    layer, head = np.unravel_index(int(np.argmax(w)), w.shape)
    out.setdefault("bank_river", {})[name] = {
        "tokens": maps["tokens"], "max_head": float(w.max()), "best": [int(layer), int(head)],
        "mean_heads": float(w.mean()), "uniform": len(keys) / (query + 1)}
  return out


# what one_model_cells reads from one_run's figures
ONE_RUN_KEYS = ("modern_english", "hello", "forms", "splits", "table", "layers", "mixing", "permutation",
                "scaling", "bank_river")
NEEDS_SEVERAL = "needs several trained models (arms or seeds), not one"


def one_model_cells(r: dict) -> dict[str, str]:
  """{claim of the main table: what one model (`one_run`'s figures) says about it}, with the
  verdict of the main table's rule where one model can decide it; claims that compare models
  (depth, vocabulary size, granularity) say NEEDS_SEVERAL."""
  from llm_input.analysis import claims as rules  # noqa: PLC0415

  me, t, ly, mx = r["modern_english"], r["table"], r["layers"], r["mixing"]
  sc, perm, br, sp = r["scaling"], r["permutation"], r["bank_river"], r["splits"]
  rand = t["random_pairs"]
  spread = 1 / math.sqrt(t["d_model"])
  pairs = {f"{p['a']}/{p['b']}": p for p in t["pairs"]}
  known = {k: p["percentile"] for k, p in pairs.items() if p["percentile"] is not None}
  shown = ", ".join(f"{k} {p['cosine']:+.2f} ({rules.ordinal(p['percentile'])})" if p["cosine"] is not None else f"{k}: {p['note']}"
                    for k, p in pairs.items())
  layers = len(ly["distance"])
  divergence = [v for v in ly["head_divergence"] if v is not None]
  return {
      "~1.3 tokens per English word with a ~50k vocabulary":
          f"{me['tokens_per_word']:.3f} tokens per word on modern English (CPython {r['python']}'s "
          f"`pydoc_data.topics`, {me['words']:,} words), {r['vocab_size']:,}-id {r['tokenizer']} tokenizer; "
          + rules.near(me["tokens_per_word"], 1.3, 0.15, "tokens per word on modern English"),
      'Letters make "Hello" 5 tokens; a word vocabulary fails on typos and rare words':
          "; ".join(f"{w!r} -> {v['ids']} {v['pieces']}" for w, v in r["hello"].items()),
      'Random embeddings start unrelated; training makes similar words close ("Hello"/"hello", king/queen)':
          f"cosine (percentile among {rand['n']:,} random pairs of ids): {shown}; " + rules.percentiles(known),
      "Without positions, attention is permutation-invariant (shuffling the words shuffles the outputs, nothing else changes)":
          f"max |logits(shuffled) - shuffled(logits)| over {r['permutation_tokens']} random ids: "
          f"{perm['none_bidirectional']:.1e} with positions and the causal mask removed, {perm['own']:.3g} with both "
          f"(logits up to {perm['logit_scale']:.1f}); "
          + rules.permutation_invariant([perm["none_bidirectional"]], [perm["own"]], perm["logit_scale"]),
      "Dividing scores by sqrt(d_k) keeps the softmax from saturating":
          f"d_head {r['d_head']}: attention entropy over {sc['tokens'][0]}x{sc['tokens'][1]} tokens of modern English "
          f"{sc['scaled']['entropy']:.2f} nats as trained vs {sc['unscaled']['entropy']:.2f} with the scores times "
          f"sqrt(d_head) (uniform {sc['scaled']['uniform_entropy']:.2f}); rows with a weight > 0.9: "
          f"{100 * sc['scaled']['rows_over_0.9']:.1f}% vs {100 * sc['unscaled']['rows_over_0.9']:.1f}% "
          "(no verdict: the model was trained with the scale; the claim is tested by models trained without it)",
      "Early layers attend locally, later layers globally":
          f"mean attention distance per layer on {ly['tokens'][0]}x{ly['tokens'][1]} tokens of modern English: "
          f"{' / '.join(f'{v:.1f}' for v in ly['distance'])} tokens back (evenly spread: {ly['uniform_distance']:.2f}); "
          f"entropy {' / '.join(f'{v:.2f}' for v in ly['entropy'])} nats; layer 1 "
          + ("below" if ly["distance"][0] < ly["distance"][-1] else "not below") + f" layer {layers} "
          "(one model: no test)",
      "Different heads capture different relations":
          ("mean Jensen-Shannon divergence between a layer's heads, per layer: "
           + " / ".join(f"{v:.3f}" for v in divergence) + " nats (0: the same keys, ln 2 = 0.693: disjoint)")
          if divergence else "one head per layer: nothing to compare",
      'More layers build deeper understanding ("why multiple layers?")': NEEDS_SEVERAL,
      "Attention moves information between tokens; the MLP works on each token alone":
          f"position {mx['position']} moved by 10% of its norm at each layer's input: attention's output changes "
          f"{np.mean(mx['attention_self']):.4f} there and {np.mean(mx['attention_other']):.4f} at later positions, "
          f"the MLP's {np.mean(mx['mlp_self']):.4f} and {np.mean(mx['mlp_other']):.2g} (mean over {layers} layers); "
          + rules.mixes_across([float(np.mean(mx["attention_other"]))], [float(np.mean(mx["attention_self"]))],
                               [float(np.mean(mx["mlp_other"]))], [float(np.mean(mx["mlp_self"]))]),
      '"Why 50,000 tokens? It\'s a sweet spot"': NEEDS_SEVERAL,
      'In "The bank by the river", "bank" attends to "river"':
          "strongest head from the last word's last piece to the second word: "
          + "; ".join(f"{name} {v['max_head']:.2f} (layer {v['best'][0]}, head {v['best'][1]}; mean over heads "
                      f"{v['mean_heads']:.2f}, uniform {v['uniform']:.2f})" for name, v in br.items()),
      "Subwords are the sweet spot between characters and words at equal compute": NEEDS_SEVERAL,
      'Words: "Every verb form needs its own entry: run, runs, ran, running"':
          ", ".join("+".join(p) for p in r["forms"].values()) + "; " + rules.own_entries(r["forms"]),
      'Subwords: "Similar words might split differently"':
          f"on modern English, a word and its capitalised form cut at different places: {sp['case_split']} of "
          f"{sp['case_pairs']} (e.g. {'; '.join(sp['case_examples'][:3])}); "
          + rules.happens(sp["case_split"], sp["case_pairs"], "case pairs split differently"),
      '"Unrelated tokens have similarity close to 0"':
          f"cosine of random pairs of ids {rand['mean']:+.3f} ± {rand['std']:.3f}; "
          + rules.near(rand["mean"], 0.0, round(spread, 3), "mean cosine of random pairs"),
      'Token ids are "just unrelated numbers" (neighbouring ids mean nothing)':
          f"cosine of ids i and i+1 {t['adjacent']['mean']:+.3f} ± {t['adjacent']['std']:.3f} vs random "
          f"{rand['mean']:+.3f}; " + rules.negligible(t["adjacent"]["cohens_d"], "neighbouring ids"),
      '"The model learns these relationships" (king/queen, run/running) with 10x the training':
          "see the similar-words row (one model, one budget)",
      'Letters: "Very inefficient. Long sequences are slow to process"':
          f"{me['bytes_per_token']:.2f} bytes per token on modern English with this tokenizer (letters: 1.00); "
          "its cost in training FLOPs per byte against letters " + NEEDS_SEVERAL,
  }


def table_one(r: dict) -> str:
  """The claims table of one model: its figures, and a verdict where one model can decide."""
  lines = [f"Claims measured on `{r['run']}` ({r['state']}); "
           "`python experiments/claims/claims.py --run RUN`", "",
           "| claim | measured on this model |", "|---|---|"]
  lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
            for row in one_model_cells(r).items() if row[1] != NEEDS_SEVERAL]
  return "\n".join(lines) + "\n"


def main() -> None:
  import sys  # noqa: PLC0415

  if "--run" in sys.argv:  # one model: python claims.py --run RUN [--out FILE.json]
    args = sys.argv[1:]
    result = one_run(args[args.index("--run") + 1])
    if "--out" in args:
      pathlib.Path(args[args.index("--out") + 1]).write_text(json.dumps(result, indent=1, default=float))
    print(table_one(result))
    return
  path = HERE / "claims.json"
  if "--imported" in sys.argv:  # the committed figures with an imported model's column
    args = sys.argv[1:]
    source = pathlib.Path(args[args.index("--imported") + 1])
    if not source.is_file():
      raise SystemExit(f"--imported {source}: no such file; write it with "
                       "`python experiments/claims/claims.py --run RUN --out FILE.json`")
    imported = json.loads(source.read_text())
    missing = [k for k in ONE_RUN_KEYS if k not in imported]
    if missing:
      raise SystemExit(f"--imported {source}: no {', '.join(missing)} (written by an older claims.py?); "
                       "write it again with `python experiments/claims/claims.py --run RUN --out FILE.json`")
    text = table(json.loads(path.read_text()), imported)
    if "--out" in args:
      pathlib.Path(args[args.index("--out") + 1]).write_text(text)
    print(text)
    return
  if "--from-json" in sys.argv:  # re-tabulate the committed figures: no runs needed
    results = json.loads(path.read_text())
  elif "--only" in sys.argv:  # recompute the named sections, keep the committed rest
    names = sys.argv[sys.argv.index("--only") + 1].split(",")
    sections = {"vocabulary": vocabulary, "trained_tables": trained_tables, "letters": letters,
                "granularity": granularity, "attention_scale": attention_scale,
                "layer_distance": layer_distance, "mixing": mixing, "vocab_sweet_spot": vocab_sweet_spot,
                "head_diversity": head_diversity, "depth": depth}
    unknown = [n for n in names if n not in sections]
    if unknown:
      raise SystemExit(f"--only: unknown section(s) {unknown}; choose from {sorted(sections)}")
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
      results[name] = sections[name]()
  elif "--table-only" in sys.argv and path.exists():
    results = json.loads(path.read_text())
    results["granularity"] = granularity()
  else:
    results = {"tokens_per_word": tokens_per_word(), "letters_and_words": letters_and_words(),
               "embeddings": embedding_claims(), "permutation": permutation(), "attention_scale": attention_scale(),
               "layer_distance": layer_distance(), "mixing": mixing(), "vocab_sweet_spot": vocab_sweet_spot(),
               "head_diversity": head_diversity(), "depth": depth(),
               "bank_river": bank_river(), "granularity": granularity(), "vocabulary": vocabulary(),
               "trained_tables": trained_tables(), "letters": letters()}
  path.write_text(json.dumps(results, indent=1, default=float))
  text = table(results)
  (HERE / "claims_table.md").write_text(text)
  readme = HERE / "README.md"
  start, end = "<!-- claims table: written by claims.py -->", "<!-- end of claims table -->"
  page = readme.read_text()
  if start in page and end in page:
    head, rest = page.split(start, 1)
    readme.write_text(head + start + "\n" + text + rest[rest.index(end):])
  print(text)


if __name__ == "__main__":
  main()
