"""Test setup: 8 simulated CPU devices for every test (sharded-vs-single checks need them)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

if "MUTANT_UNDER_TEST" in os.environ:
  # Under mutmut every mutant runs in a fresh fork that would recompile every jitted function.
  # JAX's on-disk compilation cache (keyed by the HLO, so a mutant that changes the program
  # misses it) makes an unchanged compile a file read: the sharded-step and blocked-attention
  # tests drop from 54 s to 12 s on 2 cores.
  import jax  # noqa: E402

  jax.config.update("jax_compilation_cache_dir", os.path.abspath("jax-compilation-cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


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
