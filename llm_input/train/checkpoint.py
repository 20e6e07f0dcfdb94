"""Orbax checkpoints of the whole run: train state, data iterator position, and metadata.

Saves are asynchronous, every N steps and every M minutes (whichever comes first), keep the
last k, and are atomic (orbax writes to a temporary folder and renames it). Restore checks the
saved shapes against the model first, and falls back to the previous step when the latest
checkpoint is unreadable, saying so.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import grain
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from llm_input.errors import CheckpointError, ConfigError

log = logging.getLogger("llm_input")


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  every_steps: int = 500
  every_minutes: float = 10.0
  keep: int = 3
  async_save: bool = True
  save_step0: bool = True

  def __post_init__(self):
    if not isinstance(self.every_steps, int) or self.every_steps < 1:
      raise ConfigError(f"checkpoint.every_steps must be an integer >= 1, got {self.every_steps!r}")
    if not isinstance(self.keep, int) or self.keep < 1:
      raise ConfigError(f"checkpoint.keep must be an integer >= 1, got {self.keep!r}")
    if self.every_minutes < 0:
      raise ConfigError(f"checkpoint.every_minutes must be >= 0 (0 = off), got {self.every_minutes!r}")

  @classmethod
  def from_config(cls, cfg) -> "CheckpointConfig":
    c = cfg.checkpoint
    return cls(every_steps=c.every_steps, every_minutes=c.every_minutes, keep=c.keep,
               async_save=c.async_save, save_step0=c.save_step0)


class IteratorSnapshot:
  """The data iterator's state at save time (the async save must not read a moving iterator)."""

  def __init__(self, state: dict):
    self._state = json.dumps(state).encode()

  def get_state(self) -> bytes:
    return self._state


class Checkpointer:
  def __init__(self, directory: str | pathlib.Path, *, every_steps: int, every_minutes: float,
               keep: int, async_save: bool = True):
    CheckpointConfig(every_steps=every_steps, every_minutes=every_minutes, keep=keep)  # checks
    self.directory = pathlib.Path(directory).resolve()
    save_policies = [policies.FixedIntervalPolicy(every_steps)]
    if every_minutes > 0:
      save_policies.append(policies.ContinuousCheckpointingPolicy(
          minimum_interval_secs=max(1, int(every_minutes * 60))))
    # Keep the last k, and step 0 (the untrained model the analysis compares against).
    preserve = pp.AnyPreservationPolicy([pp.LatestN(keep), pp.CustomSteps([0])])
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=async_save, create=True,
        save_decision_policy=policies.AnySavePolicy(save_policies), preservation_policy=preserve)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def save(self, step: int, state: dict, iterator_state: dict, meta: dict, *, force: bool = False) -> bool:
    """`meta` should include `param_shapes(state)` so a resume can check shapes cheaply."""
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=grain.checkpoint.CheckpointSave(IteratorSnapshot(iterator_state)),
        meta=ocp.args.JsonSave(meta))
    return self.manager.save(step, args=args, force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()

  def check_shapes(self, step: int, abstract_state: dict) -> None:
    """Raises a clear error when the saved parameters do not match the model's shapes.

    The shapes come from the checkpoint's `meta` item (written by `save`), so the check
    reads a small JSON file, not the arrays.
    """
    try:
      meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception:  # noqa: BLE001 (an unreadable checkpoint is handled by restore_latest)
      return
    have = {k: tuple(v) for k, v in (meta or {}).get("param_shapes", {}).items()}
    want = param_shapes(abstract_state)
    if not have:
      return
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    changed = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or extra or changed:
      lines = [f"{k}: checkpoint {have[k]} vs model {want[k]}" for k in changed[:5]]
      lines += [f"{k}: only in the model" for k in missing[:3]]
      lines += [f"{k}: only in the checkpoint" for k in extra[:3]]
      raise CheckpointError(
          f"the checkpoint at step {step} in {self.directory} was written by a model of a different "
          "shape (" + "; ".join(lines) + "). Use the config that wrote it (its config.json is in "
          "the run folder), or start a new --workdir.")

  def restore_latest(self, abstract_state: dict, state_shardings: dict, iterator) -> tuple[dict, int] | None:
    """Restores the newest readable checkpoint into `iterator` and returns (state, step)."""
    steps = self.steps()
    if not steps:
      return None
    target = abstract_arrays(abstract_state, state_shardings)
    failures = []
    for step in reversed(steps):
      self.check_shapes(step, abstract_state)
      try:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target),
            data=grain.checkpoint.CheckpointRestore(iterator)))
      except Exception as err:  # noqa: BLE001 (orbax raises many kinds for damaged files)
        failures.append(f"step {step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
        log.warning("checkpoint at step %d is unreadable (%s); trying the previous one", step, failures[-1])
        print(f"warning: checkpoint at step {step} in {self.directory} is corrupted or incomplete "
              f"({failures[-1]}); using the previous good checkpoint", flush=True)
        continue
      return restored["state"], step
    raise CheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(failures) +
                          ". Delete the damaged step folders or start a new --workdir.")


def abstract_arrays(abstract, shardings):
  """ShapeDtypeStructs carrying their shardings: what orbax restores into and what an
  ahead-of-time compile lowers against, with nothing allocated."""
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract, shardings)


def restore_params(directory: str | pathlib.Path, step: int, abstract_params, param_shardings) -> dict:
  """Just the parameters of the checkpoint at `step` (a partial restore of the `state` item:
  the optimizer state, whatever its structure, is never read)."""
  directory = pathlib.Path(directory).resolve()
  target = {"params": abstract_arrays(abstract_params, param_shardings)}
  manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))
  try:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))
  except Exception as err:  # noqa: BLE001 (orbax raises many kinds for damaged files)
    raise CheckpointError(f"cannot read the checkpoint at step {step} in {directory}: "
                          f"{str(err).splitlines()[0][:300]}") from None
  finally:
    manager.close()
  return restored["state"]["params"]


def param_shapes(state) -> dict[str, list]:
  """{"blocks/mlp/up_kernel": shape, ...} of the state's parameters (stored in `meta`)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state["params"])[0]:
    shape = getattr(leaf, "shape", None)
    if shape is not None:
      out["/".join(str(getattr(k, "key", k)) for k in path)] = tuple(int(d) for d in shape)
  return out
