"""Times import-hf, report, export-hf and check-hf on a model folder made by make_model.py, with
each command's peak resident memory (`/usr/bin/time -v`), and prints a Markdown table.

    python experiments/hf_interop/measure.py --from /tmp/hf_gpt2 --work /tmp/hf_measure \
        [--hf-llm-input /path/to/venv-with-torch/bin/llm-input]

`--hf-llm-input` is an llm-input installed with the hf extra (torch, transformers), for
check-hf; without it that row is skipped. Also says whether the export is byte-identical to
the file transformers wrote.
"""

import argparse
import filecmp
import pathlib
import re
import shutil
import subprocess


def timed(argv: list[str]) -> tuple[float, float, str]:
  """(wall seconds, peak RSS in GiB, output) of one command."""
  done = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
  text = done.stdout + done.stderr
  if done.returncode not in (0,):
    raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{text[-2000:]}")
  wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
  seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
  peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 2**20
  return seconds, peak, text


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--from", dest="source", required=True)
  parser.add_argument("--work", required=True, help="scratch folder (emptied)")
  parser.add_argument("--llm-input", default="llm-input")
  parser.add_argument("--hf-llm-input", default=None)
  args = parser.parse_args()
  source, work = pathlib.Path(args.source), pathlib.Path(args.work)
  shutil.rmtree(work, ignore_errors=True)
  work.mkdir(parents=True)
  run, out = work / "run", work / "export"
  weights = sum(p.stat().st_size for p in source.glob("*.safetensors"))
  rows = []
  steps = [("import-hf", [args.llm_input, "import-hf", "--from", str(source), "--out", str(run)]),
           ("report", [args.llm_input, "report", "--run", str(run)]),
           ("export-hf", [args.llm_input, "export-hf", "--run", str(run), "--out", str(out)])]
  if args.hf_llm_input:
    steps.append(("check-hf", [args.hf_llm_input, "check-hf", "--run", str(run), "--from", str(source)]))
  for name, argv in steps:
    seconds, peak, text = timed(argv)
    last = [line for line in text.splitlines() if line.startswith(("imported", "report:", "exported",
                                                                   "same model", "DIFFERENT"))]
    rows.append((name, seconds, peak, last[-1] if last else ""))
  identical = filecmp.cmp(source / "model.safetensors", out / "model.safetensors", shallow=False) \
      if (source / "model.safetensors").is_file() else None
  print(f"weights on disk: {weights / 2**20:,.2f} MiB; export byte-identical to transformers' file: {identical}\n")
  print("| command | wall (s) | peak RSS (GiB) | what it said |\n| --- | --- | --- | --- |")
  for name, seconds, peak, said in rows:
    print(f"| {name} | {seconds:.1f} | {peak:.2f} | {said.replace('|', '/')} |")


if __name__ == "__main__":
  main()
