"""Test setup: 8 simulated CPU devices for every test (sharded-vs-single checks need them)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
