"""Test setup: 8 simulated CPU devices for every test (sharded-vs-single checks need them)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


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
