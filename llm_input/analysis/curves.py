"""Loss and bits-per-byte curves from a run's metrics.jsonl."""

from __future__ import annotations

from llm_input.runs import RunFolder


def curves(workdir) -> dict:
  records = RunFolder(workdir).read_metrics()
  out = {}
  for split in ("train", "validation"):
    rows = [r for r in records if r["split"] == split]
    out[split] = {"step": [r["step"] for r in rows], "loss": [r["loss"] for r in rows],
                  "bits_per_byte": [r["bits_per_byte"] for r in rows]}
  return out


def figure(data: dict, baselines: dict | None = None):
  """Loss and bits per byte against steps; `baselines` (a run's baselines.json) adds the
  Kneser-Ney unigram's, bigram's and best order's validation bits per byte as lines."""
  import matplotlib.pyplot as plt  # noqa: PLC0415

  fig, axes = plt.subplots(1, 2, figsize=(8, 3), dpi=110)
  for ax, key in zip(axes, ("loss", "bits_per_byte")):
    for split, style in (("train", "-"), ("validation", "o-")):
      if data[split]["step"]:
        ax.plot(data[split]["step"], data[split][key], style, label=split, ms=4)
    rows = (baselines or {}).get("rows", [])
    if key == "bits_per_byte" and rows:
      best = min(rows, key=lambda r: r["bits_per_byte"])
      for row in [r for r in rows if r["order"] <= 2 or r is best]:  # unigram, bigram, the best
        ax.axhline(row["bits_per_byte"], ls=":", lw=1, color="0.4")
        ax.annotate(f"KN-{row['order']}", (1.0, row["bits_per_byte"]), xycoords=("axes fraction", "data"),
                    fontsize=6, color="0.3", ha="right", va="bottom")
    ax.set_xlabel("step")
    ax.set_ylabel(key.replace("_", " "))
    ax.legend(fontsize=8)
  fig.tight_layout()
  return fig
