"""Test setup: 8 simulated CPU devices for every test (sharded-vs-single checks need them)."""

import os

# LLVM at -O0: most of a test's time is compiling small programs, not running them; the suite
# ran in 475 s instead of 639 s of pytest (2 AMD EPYC Zen 4 cores, AVX-512, 2026-12-07), every
# test passing. XLA's own (HLO) optimisations are unchanged; what users run is XLA's default
# level, and `test_the_suites_fast_compile_trains_like_the_default_optimisation_level` checks
# that both compute the same training steps. Tests that set XLA_FLAGS for their subprocesses
# (multi-process runs, the kill-and-resume runs) add -O0 to their own flags (the two
# multi-process tests: 108 -> 78 s alone on 2 AMD EPYC Zen 3 cores, AVX2, 2026-12-08).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One on-disk compilation cache for the whole test session: its xdist workers and every
# subprocess a test starts (they inherit the environment) compile the same small models again
# and again; a compile of a program already compiled in this session becomes a file read. The
# folder is made fresh per session (pytest_configure, below, on the controller) and removed at
# its end, so no test depends on a cache left by an earlier run.
CACHE_ENV = "LLM_INPUT_TEST_COMPILATION_CACHE"
if os.environ.get(CACHE_ENV) and "MUTANT_UNDER_TEST" not in os.environ:
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ[CACHE_ENV])
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

if "MUTANT_UNDER_TEST" in os.environ:
  # Under mutmut every mutant runs in a fresh fork that would recompile every jitted function.
  # JAX's on-disk compilation cache (keyed by the HLO, so a mutant that changes the program
  # misses it) makes an unchanged compile a file read: the sharded-step and blocked-attention
  # tests drop from 54 s to 12 s on 2 cores.
  import jax  # noqa: E402

  jax.config.update("jax_compilation_cache_dir", os.path.abspath("jax-compilation-cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  """(text folder, data cache) of a small corpus (`helpers.make_text_corpus`), one per test
  module: `helpers.small_config(*corpus, ...)` trains on it."""
  from helpers import make_text_corpus  # noqa: PLC0415

  root = tmp_path_factory.mktemp("corpus")
  return make_text_corpus(root / "texts"), root / "cache"


def pytest_configure(config):
  """On the controller (not an xdist worker): a fresh compilation cache folder for the session."""
  import tempfile  # noqa: PLC0415

  if hasattr(config, "workerinput") or os.environ.get(CACHE_ENV) or "MUTANT_UNDER_TEST" in os.environ:
    return
  folder = tempfile.mkdtemp(prefix="llm_input-test-jax-cache-")
  os.environ[CACHE_ENV] = folder
  config._llm_input_cache = folder
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", folder)  # a run without xdist
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_unconfigure(config):
  import shutil  # noqa: PLC0415

  folder = getattr(config, "_llm_input_cache", None)
  if folder:
    shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
  """Under mutmut, run a mutant's fastest tests first so it dies in a cheap one: its fork
  server hands the tests over unordered (a set), and a 20-second sharded step would often
  run before the 0.1-second rule test that kills the mutant. Durations: mutmut's stats file."""
  import json  # noqa: PLC0415
  import pathlib  # noqa: PLC0415

  if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
    return
  stats = pathlib.Path("mutmut-stats.json")  # mutmut runs the tests from mutants/
  if stats.exists():
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
