"""The `llm-input` command. Each subcommand is a thin wrapper over a library function."""

from __future__ import annotations

import argparse
import json
import sys


def _split_overrides(rest: list[str]) -> list[str]:
  overrides, bad = [], []
  i = 0
  while i < len(rest):
    item = rest[i]
    if item.startswith("--config.") and "=" not in item and i + 1 < len(rest):
      item = f"{item}={rest[i + 1]}"  # --config.a.b VALUE
      i += 1
    (overrides if item.startswith("--config.") else bad).append(item)
    i += 1
  if bad:
    raise SystemExit(f"llm-input: unrecognised arguments {bad}; config overrides look like "
                     "--config.model.d_model=1024")
  return overrides


def cmd_params(args, overrides) -> int:
  from llm_input import config as config_lib
  from llm_input.model import transformer

  cfg = config_lib.load(args.config, overrides)
  model_cfg = config_lib.model_config(cfg)
  rows = transformer.param_table(model_cfg)
  total = sum(r[3] for r in rows)
  if args.json:
    print(json.dumps({"params": total, "table": [
        {"name": n, "shape": list(s), "axes": list(a), "count": c} for n, s, a, c in rows]}))
    return 0
  width = max(len(r[0]) for r in rows)
  for name, shape, axes, count in rows:
    print(f"{name:<{width}}  {str(shape):<22} {str(axes):<40} {count:>14,}")
  print(f"{'total':<{width}}  {'':<22} {'':<40} {total:>14,}")
  print(f"parameters: {total:,}")
  return 0


def build_parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="llm-input", description=__doc__)
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("params", help="parameter table and count of a config (abstract, no allocation)")
  p.add_argument("--config", required=True, help="configs/NAME.py[:arg]")
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=cmd_params, takes_overrides=True)
  return parser


def main(argv: list[str] | None = None) -> int:
  from llm_input.model.config import ConfigError

  parser = build_parser()
  args, rest = parser.parse_known_args(argv)
  overrides = _split_overrides(rest) if getattr(args, "takes_overrides", False) else []
  if rest and not getattr(args, "takes_overrides", False):
    parser.error(f"unrecognised arguments: {' '.join(rest)}")
  try:
    return args.func(args, overrides) or 0
  except ConfigError as err:
    print(f"llm-input: config error: {err}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
