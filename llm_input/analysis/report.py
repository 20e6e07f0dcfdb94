"""`llm-input report`: one self-contained HTML page per run (or per sweep).

Images are embedded as base64 PNG and nothing is fetched, so the page opens offline. Every
number on the page is also written to report.json next to it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import pathlib

import numpy as np

from llm_input.analysis import attention as attention_lib
from llm_input.analysis import curves as curves_lib
from llm_input.analysis import embeddings as embeddings_lib
from llm_input.analysis import tokenization as tokenization_lib
from llm_input.errors import CheckpointError
from llm_input.fileio import write_text_atomic
from llm_input.tokenizers.char import ByteTokenizer

DEFAULT_PROBES = ("king", "love", "night", "Hello")
ATTENTION_SENTENCE = "The bank by the river"


def _png(fig) -> str:
  import matplotlib.pyplot as plt  # noqa: PLC0415

  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  plt.close(fig)
  return base64.b64encode(buffer.getvalue()).decode()


def _img(fig, alt: str) -> str:
  return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _table(headers, rows) -> str:
  head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
  body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
  return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value, digits: int = 3) -> str:
  if value is None:
    return "–"
  if isinstance(value, float):
    return f"{value:.{digits}f}"
  return html.escape(str(value))


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}.note{color:#8a5a00;font-size:.9em}
.pair{display:flex;gap:1em;flex-wrap:wrap}.pair>div{flex:1;min-width:320px}code{background:#f5f5f5;padding:0 .2em}
.explain{color:#555;font-size:.92em}
"""
SCRIPT = """<script>
window.addEventListener('load', function () {
  var images = document.images, ok = 0;
  for (var i = 0; i < images.length; i++) { if (images[i].complete && images[i].naturalWidth > 0) ok++; }
  document.body.setAttribute('data-images-loaded', ok + '/' + images.length);
});
</script>"""


def _page(title: str, body: str) -> str:
  return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
          f"<style>{STYLE}</style></head><body>{body}{SCRIPT}</body></html>\n")


def _json_default(value):
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  raise TypeError(type(value))


def run_report(workdir, sentences=None, probes=None) -> pathlib.Path:
  """Writes DIR/report.html (and report.json) for a trained run folder."""
  from llm_input.data import pipeline  # noqa: PLC0415
  from llm_input.train import reload as run_lib  # noqa: PLC0415

  final = run_lib.load_run(workdir)  # clear errors for a missing folder or no checkpoints
  run, workdir = final.folder, final.folder.path
  steps = run.checkpoint_steps()
  initial = run_lib.load_run(workdir, step=0) if 0 in steps and final.step != 0 else None
  sentences = list(sentences or tokenization_lib.DEFAULT_SENTENCES)
  probes = list(probes or DEFAULT_PROBES)
  tokenizer = final.tokenizer
  notes: list[str] = []
  state = run.state()
  imported = run.imported()
  if imported:
    initial = None
    notes.append(f"This model was imported from Hugging Face ({imported['architecture']}, "
                 f"{imported['dtype']}) from {imported['from']}: it was trained elsewhere, so there "
                 "is no untrained checkpoint to compare with and no training curve.")
  elif final.step == 0:
    notes.append(f"This run is {state}: every section shows the model at initialisation, "
                 "before any training step.")
  elif initial is None:
    notes.append("This run folder has no step-0 checkpoint, so the embedding sections show the "
                 "trained model only (train with checkpoint.save_step0=True to compare).")

  data: dict = {"run": str(workdir), "step": final.step, "state": state, "notes": notes}
  sections = []

  # -- header ------------------------------------------------------------------------------
  table = run.read_summary().get("table", {})
  m = final.model_cfg
  data["summary"] = table
  header = [f"<h1>llm_input report: {html.escape(workdir.name)}</h1>",
            f"<p>This run is <b>{html.escape(state)}</b>.</p>",
            f"<p>Checkpoint step {final.step}; tokenizer <b>{tokenizer.kind}</b> with "
            f"{tokenizer.vocab_size:,} ids; model {m.num_layers} layers × {m.d_model} wide, "
            f"{m.num_heads} heads of {m.d_head}, positions <b>{m.positions}</b>, MLP {m.mlp}.</p>"]
  if table:
    header.append(_table(["validation loss", "bits per byte", "perplexity", "steps", "train FLOPs",
                          "tokens per word", "bytes per token"],
                         [[_fmt(table.get("val_loss")), _fmt(table.get("val_bits_per_byte")),
                           _fmt(table.get("val_perplexity"), 1), _fmt(table.get("steps")),
                           f"{table.get('train_flops', 0):.3g}", _fmt(table.get("tokens_per_word")),
                           _fmt(table.get("bytes_per_token"))]]))
  baselines = run.read_baselines()
  data["baselines"] = baselines
  if baselines.get("rows"):
    rows_kn = baselines["rows"]
    header.append("<p>Count baselines on the same validation targets and bytes (interpolated "
                  f"Kneser-Ney, discount {baselines['discount']}; <code>llm-input baseline ngram</code>):</p>"
                  + _table(["order"] + [str(r["order"]) for r in rows_kn],
                           [["bits per byte"] + [_fmt(r["bits_per_byte"]) for r in rows_kn]]))
  else:
    header.append("<p class=note>No count baseline yet: <code>llm-input baseline ngram --run "
                  f"{html.escape(str(workdir))}</code> puts the n-gram figures beside this one.</p>")
  changes = run.read_config_changes()
  data["config_changes"] = changes
  if changes:
    header.append("<p>Settings changed on resume (<code>--allow-config-change</code>):</p>" + _table(
        ["from step", "field", "before", "after"],
        [[c["step"], html.escape(k), html.escape(repr(v[0])), html.escape(repr(v[1]))]
         for c in changes for k, v in c["changed"].items()]))
  header += [f'<p class=note>{html.escape(n)}</p>' for n in notes]
  sections.append("".join(header))

  # -- tokenization ------------------------------------------------------------------------
  tokenizers = {f"{tokenizer.kind} (this run)": tokenizer, "byte": ByteTokenizer()}
  rows = tokenization_lib.compare(tokenizers, sentences)
  data["tokenization"] = rows
  sections.append(
      "<h2>1. Text becomes numbers</h2><p class=explain>Each sentence cut by this run's tokenizer "
      "and, for contrast, by raw UTF-8 bytes. The ids are the rows of the embedding table the "
      "model looks up.</p>" +
      _table(["sentence", "tokenizer", "pieces", "ids", "tokens / word", "unknown"],
             [[html.escape(r["sentence"]), html.escape(r["tokenizer"]),
               " ".join(f"<code>{html.escape(p)}</code>" for p in r["pieces"]),
               html.escape(" ".join(map(str, r["ids"]))), f"{r['tokens_per_word']:.2f}",
               r["unknown"]] for r in rows]) +
      _img(tokenization_lib.figure(rows), "tokens per word"))

  # -- embeddings --------------------------------------------------------------------------
  final_label = ("imported" if imported else
                 f"step {final.step} ({'trained' if final.step else 'initialisation'})")
  checkpoints = {"step 0 (initialisation)": initial, final_label: final}
  checkpoints = {k: v for k, v in checkpoints.items() if v is not None}
  pipe = pipeline.PipelineConfig.from_config(final.config)
  frequencies = embeddings_lib.token_frequencies(tokenizer, list(pipeline.documents(pipe, "validation")))
  summaries = {}
  for label, loaded in checkpoints.items():
    emb_table = np.asarray(loaded.params["embedding"]["table"], np.float64)
    summaries[label] = embeddings_lib.summary(emb_table, tokenizer, probes=probes)
  data["embeddings"] = {k: {kk: vv for kk, vv in v.items() if kk != "random_cosines"}
                        for k, v in summaries.items()}
  pair_rows = []
  for i, (a, b) in enumerate(embeddings_lib.DEFAULT_PAIRS):
    first = next(iter(summaries.values()))["pairs"][i]
    pair_rows.append([html.escape(f"{a} / {b}"),
                      html.escape(" + ".join(first["pieces_a"])) + " / " + html.escape(" + ".join(first["pieces_b"]))]
                     + [_fmt(s["pairs"][i]["cosine"]) for s in summaries.values()]
                     + [f"<span class=note>{html.escape(first['note'])}</span>"])
  neighbour_rows = []
  for j, word in enumerate(probes):
    cells = [html.escape(word)]
    for s in summaries.values():
      n = s["neighbours"][j]
      cells.append(f"<span class=note>{html.escape(n['note'])}</span> " if n["note"] else "")
      cells[-1] += ", ".join(f"<code>{html.escape(p)}</code> {c:.2f}" for p, c in n["neighbours"])
    neighbour_rows.append(cells)
  stats_rows = [[html.escape(label), f"{s['random_cosine_mean']:+.4f}", f"{s['random_cosine_std']:.4f}",
                 f"{s['baseline_std']:.4f}", f"{s['anisotropy']:+.4f}"] for label, s in summaries.items()]
  projections = "".join(
      f"<div>{_img(embeddings_lib.figure_projection(np.asarray(run.params['embedding']['table']), tokenizer, frequencies, probes + ['the', 'and', 'lord'], label), 'PCA ' + label)}</div>"
      for label, run in checkpoints.items())
  sections.append(
      "<h2>2. Tokens become vectors</h2><p class=explain>Cosine similarity of word vectors (rows of "
      "the embedding table; a word cut into several pieces is the mean of its pieces). At "
      "initialisation two random vectors have cosine about 0 ± 1/sqrt(d); training moves words "
      "that are used alike closer together.</p>" +
      _table(["pair", "pieces"] + list(summaries) + ["note"], pair_rows) +
      "<h3>Nearest neighbours (cosine, brute force over the whole table)</h3>" +
      _table(["probe"] + list(summaries), neighbour_rows) +
      "<h3>Random pairs and anisotropy</h3>" +
      _table(["checkpoint", "mean cosine", "std", "1/sqrt(d)", "anisotropy (mean pairwise cosine)"],
             stats_rows) +
      _img(embeddings_lib.figure_cosines(summaries), "random pair cosines") +
      f"<div class=pair>{projections}</div>")

  # -- attention ---------------------------------------------------------------------------
  maps = attention_lib.attention_maps(final.model(), tokenizer, ATTENTION_SENTENCE,
                                      add_bos=bool(final.config.data.add_bos))
  data["attention"] = {"sentence": ATTENTION_SENTENCE, "tokens": maps["tokens"],
                       "row_sums": maps["weights"].sum(-1)}
  last = maps["weights"].shape[0] - 1
  looks = [r for r in attention_lib.looks_at(maps) if r["layer"] == last]
  sections.append(
      f"<h2>3. Attention picks context</h2><p class=explain>The trained model's own attention "
      f"weights for “{html.escape(ATTENTION_SENTENCE)}”: each row is a query token, each column a "
      f"key token; the causal mask leaves the upper triangle empty; every row sums to 1.</p>" +
      _img(attention_lib.figure(maps), "attention heatmaps") +
      f"<h3>Where each token looks (layer {last}, mean over heads)</h3>" +
      _table(["token", "looks at most (weight)"],
             [[f"<code>{html.escape(r['token'])}</code>",
               ", ".join(f"<code>{html.escape(t)}</code> ({w:.2f})" for t, _, w in r["looks_at"])]
              for r in looks]))

  # -- training ----------------------------------------------------------------------------
  curve = curves_lib.curves(workdir)
  if curve["train"]["step"]:
    sections.append("<h2>4. Learning from next-token prediction</h2>" +
                    _img(curves_lib.figure(curve, baselines), "training curves"))
  config_json = run.config_text()
  sections.append(f"<h2>Config</h2><details><summary>config.json</summary><pre>"
                  f"{html.escape(config_json)}</pre></details>")

  return run.write_report(_page(f"llm_input report: {workdir.name}", "".join(sections)),
                          json.dumps(data, default=_json_default, indent=1))


def sweep_report(sweep_file: str, arg=None, root=None) -> pathlib.Path:
  """One page comparing the finished runs of a sweep (written next to the sweep file)."""
  from llm_input import sweep as sweep_lib  # noqa: PLC0415

  sweep = sweep_lib.load(sweep_file, arg, root)
  rows = sweep_lib.collect(sweep)
  if not rows:
    raise CheckpointError(f"sweep {sweep.name} has no finished runs under {sweep.root}/{sweep.name}; "
                          f"run `llm-input sweep {sweep_file}` first")
  import matplotlib.pyplot as plt  # noqa: PLC0415

  names = [r["run"] for r in rows]
  figures = []
  for key, label in (("val_bits_per_byte", "validation bits per byte"), ("tokens_per_word", "tokens per word"),
                     ("train_flops", "training FLOPs")):
    fig, ax = plt.subplots(figsize=(6, 2.8), dpi=110)
    ax.bar(range(len(rows)), [r.get(key) or 0 for r in rows], color="#4c72b0")
    ax.set_xticks(range(len(rows)), names, rotation=25, ha="right", fontsize=7)
    ax.set_ylabel(label)
    fig.tight_layout()
    figures.append(_img(fig, label))
  columns = list(dict.fromkeys(k for r in rows for k in r))
  body = (f"<h1>Sweep: {html.escape(sweep.name)}</h1><p>{len(rows)} finished runs under "
          f"<code>{html.escape(sweep.root)}/{html.escape(sweep.name)}</code>.</p>" +
          (f"<p class=warn><b>{html.escape(gone)}</b></p>" if (gone := sweep_lib.missing_note(sweep)) else "") +
          _table(columns, [[_fmt(r.get(c)) if not isinstance(r.get(c), float) or c != "train_flops"
                            else f"{r[c]:.3g}" for c in columns] for r in rows]) + "".join(figures))
  if any("seed" in r for r in rows):  # the seed-to-seed spread of every arm
    from llm_input.analysis import sweep_tables  # noqa: PLC0415

    _, columns, cells = sweep_tables.arm_table(sweep, rows)
    body += ("<h2>Per arm over seeds (mean ± std)</h2>"
             + _table(columns, [[html.escape(c) for c in row] for row in cells]))
  out = pathlib.Path(sweep_file).parent / "report.html"
  write_text_atomic(out, _page(f"sweep {sweep.name}", body))
  return out
