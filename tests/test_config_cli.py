"""Config files, overrides and the `llm-input params` command."""

import pathlib
import subprocess
import sys

import pytest

from llm_input import cli
from llm_input import config as config_lib
from llm_input.model import transformer
from llm_input.model.config import ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_params_command_prints_gpt2_small_count(capsys):
  assert cli.main(["params", "--config", str(ROOT / "configs/gpt2_small.py")]) == 0
  assert "parameters: 124,439,808" in capsys.readouterr().out


def test_params_console_script_in_a_subprocess():
  out = subprocess.run([sys.executable, "-m", "llm_input.cli", "params", "--config",
                        "configs/d4096.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr
  count = int(out.stdout.strip().splitlines()[-1].split(":")[1].replace(",", ""))
  assert count > 6_000_000_000


def test_overrides_are_typed_and_checked():
  cfg = config_lib.load(str(ROOT / "configs/tiny.py"),
                        ["--config.model.d_model=256", "--config.model.positions=rope",
                         "--config.model.num_kv_heads=2", "--config.model.use_bias=false"])
  assert cfg.model.d_model == 256 and cfg.model.positions == "rope"
  assert cfg.model.num_kv_heads == 2 and cfg.model.use_bias is False
  with pytest.raises(ConfigError, match="unknown config field 'model.d_modle'.*d_model"):
    config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.model.d_modle=3"])
  with pytest.raises(ConfigError, match="model.d_model.*int"):
    config_lib.load(str(ROOT / "configs/tiny.py"), ["--config.model.d_model=wide"])
  with pytest.raises(ConfigError, match="does not exist"):
    config_lib.load("configs/nope.py")


def test_inconsistent_override_fails_with_field_name(capsys):
  code = cli.main(["params", "--config", str(ROOT / "configs/tiny.py"), "--config.model.num_heads=3"])
  assert code == 2
  assert "model.num_heads" in capsys.readouterr().err


CONFIG_FILES = sorted(p for p in (ROOT / "configs").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_config_file_parses_and_sizes(path):
  cfg = config_lib.load(str(path))
  count = transformer.count_params(config_lib.model_config(cfg))
  assert count > 0
