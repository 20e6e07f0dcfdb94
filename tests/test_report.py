"""The run report: numbers equal direct computation from the checkpoint; notes for missing
step 0, multi-piece and unknown words; a real headless browser renders it."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from llm_input import cli
from llm_input.analysis import embeddings, report
from llm_input.errors import CheckpointError
from llm_input.train import loop, reload as run_lib

from helpers import make_text_corpus, small_config

PROBES = ["bank", "ΩΩ"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  root = tmp_path_factory.mktemp("report")
  corpus = make_text_corpus(root / "texts")
  workdir = root / "run"
  loop.train(small_config(corpus, root / "cache", "train.steps=30", "train.eval_every=30"), workdir,
             say=lambda *a: None)
  out = report.run_report(workdir, probes=PROBES)
  return workdir, out


def test_report_numbers_equal_direct_computation(trained):
  workdir, out = trained
  data = json.loads((workdir / "report.json").read_text())
  run = run_lib.load_run(workdir)
  table = np.asarray(run.params["embedding"]["table"], np.float64)
  tok = run.tokenizer
  trained_label = f"step {run.step} (trained)"
  reported = data["embeddings"][trained_label]
  # cosine of two rows, by hand: "cat" and "dog" are single words of the char vocabulary
  cat = table[tok.encode("cat")].mean(0)
  dog = table[tok.encode("dog")].mean(0)
  want = float(cat @ dog / np.linalg.norm(cat) / np.linalg.norm(dog))
  pair = next(p for p in reported["pairs"] if (p["a"], p["b"]) == ("cat", "dog"))
  assert pair["cosine"] == pytest.approx(want, abs=1e-9)
  html = out.read_text()
  assert f"{want:.3f}" in html
  # nearest neighbours of "bank" by brute force
  query = table[tok.encode("bank")].mean(0)
  scores = table @ query / (np.linalg.norm(table, axis=1) * np.linalg.norm(query))
  scores[:4] = -np.inf
  best = [tok.id_to_piece(int(i)) for i in np.argsort(-scores)[:3]]
  got = next(n for n in reported["neighbours"] if n["word"] == "bank")["neighbours"]
  assert [p for p, _ in got[:3]] == best
  # attention rows sum to 1 in every layer and head
  np.testing.assert_allclose(np.asarray(data["attention"]["row_sums"]), 1.0, atol=1e-5)
  # the step-0 table is the initialisation: random cosines near 0 +- 1/sqrt(d)
  initial = data["embeddings"]["step 0 (initialisation)"]
  assert abs(initial["random_cosine_mean"]) < 0.05
  assert initial["random_cosine_std"] == pytest.approx(1 / np.sqrt(32), rel=0.3)


def test_report_notes_multi_piece_and_unknown_words(trained):
  workdir, out = trained
  html = out.read_text()
  assert "mean of its 4 pieces" in html  # "bank" under a char tokenizer
  assert "becomes &lt;unk&gt;" in html  # "ΩΩ" was never seen
  assert "1. Text becomes numbers" in html and "3. Attention picks context" in html


def test_report_without_step0_checkpoint_says_so(trained, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(trained[0], workdir)
  shutil.rmtree(workdir / "checkpoints" / "0")
  html = report.run_report(workdir).read_text()
  assert "no step-0 checkpoint" in html
  assert "step 0 (initialisation)" not in json.loads((workdir / "report.json").read_text())["embeddings"]


def test_missing_run_folder_is_a_clear_error(tmp_path, capsys):
  with pytest.raises(CheckpointError, match="does not exist"):
    report.run_report(tmp_path / "nothing")
  assert cli.main(["report", "--run", str(tmp_path / "nothing")]) == 2
  assert "does not exist" in capsys.readouterr().err


def test_word_vector_edge_cases():
  from llm_input import tokenizers
  tok = tokenizers.train("word", 20, ["the cat sat on the mat"])
  table = np.random.default_rng(0).normal(size=(tok.vocab_size, 8))
  assert embeddings.word_vector(table, tok, "zebra").note == "becomes <unk>: no vector of its own"
  v = embeddings.word_vector(table, tok, "cat")
  np.testing.assert_allclose(v.vector, table[tok.encode("cat")[0]])
  unit = table / np.linalg.norm(table, axis=1, keepdims=True)
  pairwise = unit @ unit.T
  n = len(table)
  assert embeddings.anisotropy(table) == pytest.approx((pairwise.sum() - n) / (n * (n - 1)))


def _chromium():
  return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (make test "
                    "installs it with apt-get where it can; without it the browser check cannot run)")
def test_report_renders_in_headless_chromium(trained, tmp_path):
  from PIL import Image
  _, out = trained
  base = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
  dom = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
                               "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
  assert dom.returncode == 0, dom.stderr[-2000:]
  loaded = dom.stdout.split('data-images-loaded="')[1].split('"')[0]
  ok, total = map(int, loaded.split("/"))
  assert total >= 6 and ok == total, loaded
  console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
  assert not console_errors, console_errors
  shot = tmp_path / "shot.png"
  subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,2400", out.as_uri()],
                 capture_output=True, text=True, timeout=120, check=True)
  pixels = np.asarray(Image.open(shot).convert("L"), np.float64)
  assert pixels.shape[0] >= 2000 and pixels.std() > 10  # images and text drew, not a blank page


def test_atomic_writes_leave_no_temporary_and_use_normal_permissions(tmp_path):
  from llm_input.fileio import write_text_atomic

  old = os.umask(0o022)
  try:
    write_text_atomic(tmp_path / "sub" / "a.json", "{}\n")
  finally:
    os.umask(old)
  assert (tmp_path / "sub" / "a.json").read_text() == "{}\n"
  assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.json"]
  assert (tmp_path / "sub" / "a.json").stat().st_mode & 0o777 == 0o644


@pytest.fixture(scope="module")
def trained_bpe(tmp_path_factory):
  root = tmp_path_factory.mktemp("report_bpe")
  corpus = make_text_corpus(root / "texts")
  workdir = root / "run"
  loop.train(small_config(corpus, root / "cache", "train.steps=8", "train.eval_every=8",
                          "tokenizer.kind=bpe", "tokenizer.vocab_size=300"), workdir, say=lambda *a: None)
  return workdir, report.run_report(workdir, probes=["bank", "riverbank"])


def test_bpe_report_header_equals_summary_and_words_group_their_pieces(trained_bpe):
  workdir, out = trained_bpe
  summary = json.loads((workdir / "summary.json").read_text())["table"]
  header = out.read_text().split("<h2>")[0]
  cells = [c.split("</td>")[0] for c in header.split("<td>")[1:]]
  # validation loss, bits per byte, perplexity, steps, train FLOPs, tokens per word, bytes per token
  assert cells[0] == f"{summary['val_loss']:.3f}" and cells[1] == f"{summary['val_bits_per_byte']:.3f}"
  assert cells[2] == f"{summary['val_perplexity']:.1f}" and cells[3] == str(summary["steps"])
  assert cells[5] == f"{summary['tokens_per_word']:.3f}" and cells[6] == f"{summary['bytes_per_token']:.3f}"
  # a word after a space is the mean of its SentencePiece pieces without the lone "▁" piece
  run = run_lib.load_run(workdir)
  tok = run.tokenizer
  table = np.asarray(run.params["embedding"]["table"], np.float64)
  ids = [i for i in tok.encode(" riverbank") if tok.id_to_piece(i) != "\u2581"]
  assert len(ids) > 1
  data = json.loads((workdir / "report.json").read_text())
  got = next(n for n in data["embeddings"][f"step {run.step} (trained)"]["neighbours"] if n["word"] == "riverbank")
  query = table[ids].mean(0)
  scores = table @ query / (np.linalg.norm(table, axis=1) * np.linalg.norm(query))
  scores[:tok.num_special_ids] = -np.inf
  assert got["neighbours"][0][0] == tok.id_to_piece(int(np.argmax(scores)))
  assert f"mean of its {len(ids)} pieces" in out.read_text()


def test_the_report_says_what_the_run_is_untrained_diverged_or_trained(tmp_path):
  from llm_input.runs import RunFolder

  corpus = make_text_corpus(tmp_path / "texts")
  quiet = lambda *a: None  # noqa: E731
  diverged = tmp_path / "diverged"
  with pytest.raises(CheckpointError, match="step 2"):
    loop.train(small_config(corpus, tmp_path / "cache", "train.on_nonfinite=stop"), diverged,
               say=quiet, inject_nonfinite=(2,))
  assert RunFolder(diverged).state() == "diverged at step 2 (last good checkpoint: step 0)"
  page = report.run_report(diverged).read_text()
  assert "This run is <b>diverged at step 2 (last good checkpoint: step 0)</b>" in page
  assert "(trained)" not in page and "no step-0 checkpoint" not in page
  assert "every section shows the model at initialisation" in page
  partial = tmp_path / "partial"
  loop.train(small_config(corpus, tmp_path / "cache"), partial, say=quiet, stop_after=3)
  assert RunFolder(partial).state() == "untrained (only its step-0 checkpoint)"
  loop.train(small_config(corpus, tmp_path / "cache"), partial, say=quiet, stop_after=6)
  assert RunFolder(partial).state() == "trained to step 5 of 20 (unfinished)"
  loop.train(small_config(corpus, tmp_path / "cache"), partial, say=quiet)
  assert RunFolder(partial).state() == "trained to step 20 (finished)"
