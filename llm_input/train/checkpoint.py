"""Orbax checkpoints of the whole run: train state, data iterator position, and metadata.

Saves are asynchronous, every N steps and every M minutes (whichever comes first), keep the
last k, and are atomic (orbax writes to a temporary folder and renames it). Every save records
a checksum of each array (computed on device, exact integer arithmetic over the bits) and
refuses non-finite parameters. Restore checks the saved shapes against the model first, then
the checksums and finiteness of what it read (a checkpoint without checksums is not trusted),
and falls back to the previous step when the latest checkpoint is unreadable or damaged,
saying so; the damaged step folders are moved to the run's damaged_checkpoints/, so the
retrained steps are saved again.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies
from orbax.checkpoint.checkpoint_managers import preservation_policy as pp

from llm_input import config as config_lib
from llm_input import fileio
from llm_input.errors import CheckpointError, ConfigError

log = logging.getLogger("llm_input")


class _FailedWriteFilter(logging.Filter):
  """Drops orbax's own log records (with their tracebacks) of a write that failed on a full
  or read-only disk: the trainer reports that failure itself, in one line."""

  def filter(self, record: logging.LogRecord) -> bool:
    err = record.exc_info[1] if record.exc_info else None
    return fileio.write_failure(err) is None and fileio.write_failure(
        OSError(record.getMessage())) is None


class _ReadOnlyNotice(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Given directory is read only")


def _orphaned_callback(exc_type, exc) -> bool:
  """tensorstore's completion callbacks of writes still in flight when orbax's event loop
  closed on a failed save: each prints `RuntimeError: Event loop is closed` through
  sys.unraisablehook (dozens per failed save), saying nothing the one-line error does not."""
  return exc_type is RuntimeError and str(exc) == "Event loop is closed"


def _quiet_failed_writes() -> None:
  absl = logging.getLogger("absl")
  if not any(isinstance(f, _FailedWriteFilter) for f in absl.filters):
    absl.addFilter(_FailedWriteFilter())
  hook = sys.unraisablehook
  if not getattr(hook, "llm_input_quiet", False):
    def quiet_hook(unraisable):
      if not _orphaned_callback(unraisable.exc_type, unraisable.exc_value):
        hook(unraisable)

    quiet_hook.llm_input_quiet = True
    sys.unraisablehook = quiet_hook


# A replica slice smaller than this is not split over the array's replicas when saved. Orbax
# splits each replicated array's write over its replicas (`use_replica_parallel`), one slice op
# per replica: on a data-parallel CPU mesh that is 8 dispatches (and 8 small compiles) per
# array for kilobytes each, 0.75 s of every save of the test model on 8 simulated devices
# (2 AMD EPYC Zen 3 cores). Arrays above it (a large model's embedding) still split, where
# the devices' transfers to the host run side by side.
REPLICA_PARALLEL_MIN_BYTES = 4 << 20


def _register_array_handler() -> None:
  """Orbax's jax.Array handler as orbax registers it, with REPLICA_PARALLEL_MIN_BYTES."""
  # The metadata store is orbax's default one (private module; orbax is pinned in pyproject).
  from orbax.checkpoint._src.metadata import array_metadata_store  # noqa: PLC0415

  current = ocp.type_handlers.get_type_handler(jax.Array)
  if getattr(current, "_min_slice_bytes_for_replica_parallel", None) == REPLICA_PARALLEL_MIN_BYTES:
    return
  absl = logging.getLogger("absl")
  level = absl.level
  absl.setLevel(logging.ERROR)  # orbax warns that it replaces its own handler: we mean to
  try:
    ocp.type_handlers.register_type_handler(jax.Array, ocp.type_handlers.ArrayHandler(
        array_metadata_store=array_metadata_store.Store(),
        min_slice_bytes_for_replica_parallel=REPLICA_PARALLEL_MIN_BYTES), override=True)
  finally:
    absl.setLevel(level)


class NonFiniteError(CheckpointError):
  label = "training diverged"


def _leaf_checksum(x):
  """64 bits of checksum of an array's bits: two wrapping uint32 sums, one position-weighted,
  so any flipped bit or moved element changes it, whatever the order of the reduction."""
  x = jnp.asarray(x)
  if x.dtype.itemsize == 2:
    bits = jax.lax.bitcast_convert_type(x, jnp.uint16).astype(jnp.uint32)
  elif x.dtype.itemsize == 4:
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
  elif x.dtype.itemsize == 1:
    bits = jax.lax.bitcast_convert_type(x, jnp.uint8).astype(jnp.uint32)
  else:  # 8 bytes: two uint32 words per element
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
  bits = bits.reshape(-1)
  index = jnp.arange(bits.size, dtype=jnp.uint32)
  mixed = (bits ^ (bits >> 15)) * (index * jnp.uint32(0x9E3779B1) | jnp.uint32(1))
  return jnp.stack([jnp.sum(bits, dtype=jnp.uint32), jnp.sum(mixed, dtype=jnp.uint32)])


@jax.jit
def _checksums_and_finite(state):
  sums = jax.tree.map(_leaf_checksum, state)
  floats = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state["params"])
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return sums, jnp.all(jnp.stack(floats)) if floats else jnp.bool_(True)


def _flat_keys(tree) -> dict:
  return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def state_checksums(state) -> tuple[dict[str, str], bool]:
  """({array path: 16-hex-digit checksum}, whether every parameter is finite)."""
  sums, finite = jax.device_get(_checksums_and_finite(state))
  return ({k: f"{int(v[0]):08x}{int(v[1]):08x}" for k, v in _flat_keys(sums).items()},
          bool(finite))


_CHUNK = 1 << 22  # elements per piece of a host-side checksum (bounds its temporaries)


def host_checksums(state) -> tuple[dict[str, str], bool]:
  """`state_checksums` computed on the host, a piece of one array at a time, for numpy arrays
  that should not be copied to a device whole (an imported model); the same 16 hex digits."""
  out, finite = {}, True
  for key, leaf in _flat_keys(state).items():
    flat = np.ascontiguousarray(leaf).reshape(-1)
    if flat.dtype.itemsize not in (1, 2, 4):
      raise ValueError(f"host_checksums handles 1-, 2- and 4-byte dtypes, not {flat.dtype}")
    words = flat.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[flat.dtype.itemsize])
    total = mixed_total = 0  # sums mod 2**32, as the device's wrapping uint32 sums
    for start in range(0, words.size, _CHUNK):
      bits = words[start:start + _CHUNK].astype(np.uint32)
      index = np.arange(start, start + bits.size, dtype=np.uint32)
      mixed = (bits ^ (bits >> np.uint32(15))) * (index * np.uint32(0x9E3779B1) | np.uint32(1))
      total = (total + int(bits.sum(dtype=np.uint32))) & 0xFFFFFFFF
      mixed_total = (mixed_total + int(mixed.sum(dtype=np.uint32))) & 0xFFFFFFFF
      if key.startswith("params/") and np.issubdtype(flat.dtype, np.floating):
        finite = finite and bool(np.isfinite(flat[start:start + _CHUNK]).all())
    out[key] = f"{int(total):08x}{int(mixed_total):08x}"
  return out, finite


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
  every_steps: int = 500
  every_minutes: float = 10.0
  keep: int = 3
  async_save: bool = True
  save_step0: bool = True
  keep_steps: tuple[int, ...] = ()  # always saved and never deleted (e.g. wsd branch points)

  def __post_init__(self):
    if not isinstance(self.every_steps, int) or self.every_steps < 1:
      raise ConfigError(f"checkpoint.every_steps must be an integer >= 1, got {self.every_steps!r}")
    if not isinstance(self.keep, int) or self.keep < 1:
      raise ConfigError(f"checkpoint.keep must be an integer >= 1, got {self.keep!r}")
    if self.every_minutes < 0:
      raise ConfigError(f"checkpoint.every_minutes must be >= 0 (0 = off), got {self.every_minutes!r}")
    if not all(isinstance(s, int) and s >= 0 for s in self.keep_steps):
      raise ConfigError(f"checkpoint.keep_steps must be step numbers >= 0, got {self.keep_steps!r}")

  @classmethod
  def from_config(cls, cfg) -> "CheckpointConfig":
    return config_lib.typed_section(cls, cfg.checkpoint, "checkpoint",
                                    keep_steps=tuple(cfg.checkpoint.get("keep_steps", ())))


class Checkpointer:
  def __init__(self, directory: str | pathlib.Path, config: CheckpointConfig):
    """Saves into `directory` when `config` says (every N steps, every M minutes, its
    keep_steps); keeps the last `keep`, step 0 and the keep_steps."""
    every_steps, every_minutes, keep = config.every_steps, config.every_minutes, config.keep
    async_save, keep_steps = config.async_save, config.keep_steps
    self.directory = pathlib.Path(directory).resolve()
    save_policies = [policies.FixedIntervalPolicy(every_steps)]
    if keep_steps:
      save_policies.append(policies.SpecificStepsPolicy(list(keep_steps)))
    if every_minutes > 0:
      save_policies.append(policies.ContinuousCheckpointingPolicy(
          minimum_interval_secs=max(1, int(every_minutes * 60))))
    # Keep the last k, step 0 (the untrained model the analysis compares against) and keep_steps.
    preserve = pp.AnyPreservationPolicy([pp.LatestN(keep), pp.CustomSteps([0, *keep_steps])])
    options = ocp.CheckpointManagerOptions(
        enable_async_checkpointing=async_save, create=True,
        save_decision_policy=policies.AnySavePolicy(save_policies), preservation_policy=preserve)
    self.manager = ocp.CheckpointManager(self.directory, options=options)
    self.failed = False  # a save failed: orbax's threads for it never finish, so close skips them
    _quiet_failed_writes()
    _register_array_handler()

  def _failed(self, err: BaseException):
    """Marks the checkpointer failed and re-raises `err`; a full or read-only disk as an
    OSError that names the folder written (orbax's and tensorstore's messages may not)."""
    self.failed = True
    failure = fileio.write_failure(err)
    if failure is not None and failure[1] is None:
      code = failure[0]
      raise OSError(code, fileio.WRITE_FAILURES[code], str(self.directory)) from err
    raise err

  def check(self) -> None:
    """Raises the error of a background save that failed (a full disk, a read-only folder)
    as soon as it is known, not at the next save: the loop calls it every step."""
    try:
      self.manager.check_for_errors()
    except BaseException as err:
      self._failed(err)
    # A save whose folder could not be created fails in the manager's finalize thread, which
    # check_for_errors does not look at (orbax 0.12.8, pinned); its wait re-raises the error.
    finalize = getattr(self.manager, "_finalize_thread", None)
    if finalize is not None and finalize.map(
        lambda t: t is not None and not t.is_alive() and t.exception is not None):
      self.wait()

  def steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

  def will_save(self, step: int) -> bool:
    return self.manager.should_save(step)

  def save(self, step: int, state: dict, iterator_state: dict, meta: dict, *, force: bool = False,
           on_host: bool = False) -> bool:
    """`meta` should include `param_shapes(state)` so a resume can check shapes cheaply.

    Adds the arrays' checksums to `meta` (`on_host`: computed on the host, for numpy arrays);
    raises NonFiniteError (writing nothing) when a parameter is not finite."""
    if not (force or self.manager.should_save(step)):
      return False
    checksums, finite = host_checksums(state) if on_host else state_checksums(state)
    if not finite:
      raise NonFiniteError(f"refusing to save step {step}: its parameters are not finite")
    # The data iterator's state is global (the next batch number, the same on every process),
    # so it goes into the JSON item that process 0 writes: a run can resume on another
    # number of processes.
    args = ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        meta=ocp.args.JsonSave({**meta, "checksums": checksums, "data_iterator": iterator_state}))
    try:
      return self.manager.save(step, args=args, force=True)
    except BaseException as err:
      self._failed(err)

  def wait(self) -> None:
    try:
      self.manager.wait_until_finished()
    except BaseException as err:
      self._failed(err)

  def close(self) -> None:
    """Waits for the last save and closes; after a failed save, does neither (its threads wait
    for a commit that never comes) and leaves the earlier checkpoints as they are."""
    if self.failed:
      return
    self.wait()
    self.manager.close()

  def read_meta(self, step: int) -> dict:
    """The small JSON item of a checkpoint ({} when unreadable: restore_latest handles that)."""
    try:
      return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"] or {}
    except Exception:  # noqa: BLE001
      return {}

  def check_shapes(self, step: int, abstract_state: dict, meta: dict | None = None) -> None:
    """Raises a clear error when the saved parameters do not match the model's shapes.

    The shapes come from the checkpoint's `meta` item (written by `save`), so the check
    reads a small JSON file, not the arrays.
    """
    meta = self.read_meta(step) if meta is None else meta
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

  def roll_back(self, err, abstract_state: dict, state_shardings: dict, iterator) -> tuple[dict, int]:
    """After step `err.step` diverged: the newest good state before it, and its step. The data
    `iterator` keeps its position, so the batches since that checkpoint (the bad one included)
    are skipped, not replayed."""
    self.wait()
    position = iterator.get_state()
    back = self.restore_latest(abstract_state, state_shardings, iterator, below=err.step)
    if back is None:
      raise NonFiniteError(f"step {err.step}: {err.problem}; no earlier checkpoint to roll back to") from None
    iterator.set_state(position)
    return back[0], back[1]

  def restore_latest(self, abstract_state: dict, state_shardings: dict, iterator,
                     below: int | None = None) -> tuple[dict, int, dict] | None:
    """Restores the newest good checkpoint (before step `below`, if given) into `iterator`
    and returns (state, step, meta). A checkpoint that cannot be read, whose arrays do not
    match their recorded checksums, or whose parameters are not finite is skipped, saying so."""
    steps = [s for s in self.steps() if below is None or s < below]
    if not steps:
      return None
    target = abstract_arrays(abstract_state, state_shardings)
    failures, damaged = [], []
    for step in reversed(steps):
      meta = self.read_meta(step)
      self.check_shapes(step, abstract_state, meta)
      if meta and "data_iterator" not in meta:
        problem = ("written before the token store pipeline (no data_iterator state); sample or "
                   "report it, or retrain in a new --workdir")
      else:
        try:
          restored = self.manager.restore(step, args=ocp.args.Composite(
              state=ocp.args.StandardRestore(target)))
          problem = verify(restored["state"], meta)
        except Exception as err:  # noqa: BLE001 (orbax raises many kinds for damaged files)
          problem = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        if problem:
          damaged.append(step)
      if problem:
        failures.append(f"step {step}: {problem}")
        log.warning("checkpoint at step %d is unusable (%s); trying the previous one", step, problem)
        print(f"warning: checkpoint at step {step} in {self.directory} is corrupted or incomplete "
              f"({problem}); using the previous good checkpoint", flush=True)
        continue
      iterator.set_state(meta["data_iterator"])
      self._set_aside(damaged)
      return restored["state"], step, meta
    raise CheckpointError(f"no readable checkpoint in {self.directory}: " + "; ".join(failures) +
                          ". Delete the damaged step folders or start a new --workdir.")

  @property
  def damaged_dir(self) -> pathlib.Path:
    return self.directory.parent / "damaged_checkpoints"

  def _set_aside(self, steps: list[int]) -> None:
    """Moves damaged step folders (newer than the one restored) out of the checkpoints folder,
    so the retrained steps are saved again and the next start does not meet them."""
    if not steps:
      return
    from llm_input import distributed  # noqa: PLC0415

    self.wait()
    if jax.process_index() == 0:
      self.damaged_dir.mkdir(exist_ok=True)
      for step in steps:
        where = self.damaged_dir / str(step)
        n = 1
        while where.exists():
          where, n = self.damaged_dir / f"{step}.{n}", n + 1
        (self.directory / str(step)).rename(where)
        print(f"note: moved the damaged checkpoint of step {step} to {where}; the steps after the "
              "restored one are trained and saved again", flush=True)
    distributed.barrier("llm_input: damaged checkpoints set aside")
    self.manager.reload()


def verify(state: dict, meta: dict) -> str:
  """'' when `state` matches the checksums recorded at save time and its parameters are
  finite; otherwise what is wrong. A checkpoint without checksums is not trusted."""
  have, finite = state_checksums(state)
  want = meta.get("checksums") or {}
  if not want:
    return ("no checksums are recorded with it (its meta item was edited, or it was written "
            "before checksums existed), so its arrays cannot be verified")
  damaged = sorted(k for k in want if k in have and have[k] != want[k])
  if damaged:
    return f"checksum mismatch in {len(damaged)} array(s), e.g. {damaged[0]}: the files are damaged"
  if not finite:
    return "its parameters are not finite"
  return ""


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
  # Read-only, with the options orbax would otherwise "correct" with a warning each; its
  # remaining notice ("Given directory is read only") says what we asked for, so it is dropped.
  options = ocp.CheckpointManagerOptions(read_only=True, save_interval_steps=0, create=False,
                                         max_to_keep=None, cleanup_tmp_directories=False)
  absl = logging.getLogger("absl")
  notice = _ReadOnlyNotice()
  absl.addFilter(notice)
  try:
    manager = ocp.CheckpointManager(directory, options=options)
  finally:
    absl.removeFilter(notice)
  try:
    restored = manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeRestore(
            item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=True),
        meta=ocp.args.JsonRestore()))
    problem = verify({"params": restored["state"]["params"]}, restored["meta"] or {})
  except Exception as err:  # noqa: BLE001 (orbax raises many kinds for damaged files)
    problem = str(err).splitlines()[0][:300]
  finally:
    manager.close()
  if problem:
    raise CheckpointError(f"cannot use the checkpoint at step {step} in {directory}: {problem}; "
                          "choose another with --step, or retrain")
  return restored["state"]["params"]


def param_shapes(state) -> dict[str, list]:
  """{"blocks/mlp/up_kernel": shape, ...} of the state's parameters (stored in `meta`)."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(state["params"])[0]:
    shape = getattr(leaf, "shape", None)
    if shape is not None:
      out["/".join(str(getattr(k, "key", k)) for k in path)] = tuple(int(d) for d in shape)
  return out
