"""Several JAX processes as one job: start-up, agreement, and a rehearsal on one machine.

`initialize` joins a job from `--coordinator HOST:PORT --num-processes N --process-id I` (or
LLM_INPUT_COORDINATOR / LLM_INPUT_NUM_PROCESSES / LLM_INPUT_PROCESS_ID, which launchers set),
or, with `--multihost` alone, from what the TPU/GPU cluster runtime provides. On CPU the
collectives go through gloo, so N processes on one machine run the real multi-host code paths.
`launch_local` starts such a job on this machine (`llm-input launch-local`).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time

from llm_input.errors import ConfigError

ENV_COORDINATOR = "LLM_INPUT_COORDINATOR"
ENV_NUM_PROCESSES = "LLM_INPUT_NUM_PROCESSES"
ENV_PROCESS_ID = "LLM_INPUT_PROCESS_ID"
ENV_TIMEOUT = "LLM_INPUT_COORDINATOR_TIMEOUT"  # seconds to wait for every process to join
ENV_HEARTBEAT = "LLM_INPUT_HEARTBEAT_TIMEOUT"  # seconds of silence after which a peer is dead


def add_arguments(parser) -> None:
  parser.add_argument("--multihost", action="store_true",
                      help="join a multi-host job described by the TPU/GPU cluster runtime")
  parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0's coordinator")
  parser.add_argument("--num-processes", type=int, default=None, help="processes in the job")
  parser.add_argument("--process-id", type=int, default=None, help="this process's index, 0..N-1")


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, multihost: bool = False) -> bool:
  """Joins the job if one is described; returns whether this is a multi-process run."""
  coordinator = coordinator or os.environ.get(ENV_COORDINATOR) or None
  if num_processes is None and os.environ.get(ENV_NUM_PROCESSES):
    num_processes = int(os.environ[ENV_NUM_PROCESSES])
  if process_id is None and os.environ.get(ENV_PROCESS_ID):
    process_id = int(os.environ[ENV_PROCESS_ID])
  multihost = multihost or os.environ.get("LLM_INPUT_MULTIHOST") == "1"
  explicit = coordinator is not None or num_processes is not None or process_id is not None
  if not explicit and not multihost:
    return False
  if explicit:
    if coordinator is None or num_processes is None or process_id is None:
      raise ConfigError("--coordinator, --num-processes and --process-id go together (or "
                        f"{ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID})")
    if ":" not in coordinator:
      raise ConfigError(f"--coordinator {coordinator!r} must be HOST:PORT, e.g. localhost:12355")
    if num_processes < 1:
      raise ConfigError(f"--num-processes must be >= 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
      raise ConfigError(f"--process-id {process_id} is out of range for {num_processes} processes "
                        f"(0..{num_processes - 1})")
  import jax  # noqa: PLC0415

  # Only CPU collectives use this; TPU and GPU keep their own (ICI/NCCL).
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if not explicit:
    jax.distributed.initialize()  # coordinator and ids from the TPU/GPU runtime
    return True
  timeout = int(os.environ.get(ENV_TIMEOUT, "300"))
  heartbeat = int(os.environ.get(ENV_HEARTBEAT, "100"))
  if process_id != 0 and not _reachable(coordinator, timeout):
    # JAX's runtime aborts the process (no Python exception) when registration times out,
    # so the other processes first check that process 0's coordinator is listening.
    raise ConfigError(f"process {process_id} of {num_processes} could not join the job at "
                      f"{coordinator} within {timeout} s (nothing is listening there); start "
                      "process 0 (it hosts the coordinator) or check the address")
  try:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=timeout,
                               heartbeat_timeout_seconds=heartbeat)
  except Exception as err:  # noqa: BLE001 (the runtime raises XlaRuntimeError and friends)
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    raise ConfigError(f"process {process_id} of {num_processes} could not join the job at "
                      f"{coordinator} within {timeout} s ({first}); start every process (process "
                      "0 hosts the coordinator) and check the address") from None
  _check_same_count(num_processes)
  return True


def _check_same_count(num_processes: int) -> None:
  """The job's size is process 0's --num-processes: a process started with another number
  would be silently overruled, so every process refuses."""
  import jax  # noqa: PLC0415
  import numpy as np  # noqa: PLC0415
  from jax.experimental import multihost_utils  # noqa: PLC0415

  every = np.asarray(multihost_utils.process_allgather(np.int32(num_processes))).reshape(-1)
  differ = {i: int(n) for i, n in enumerate(every) if n != jax.process_count()}
  if differ:
    shown = ", ".join(f"process {i}: {n}" for i, n in differ.items())
    raise ConfigError(f"the job has {jax.process_count()} processes but some were started with "
                      f"another --num-processes ({shown}); start every process with the same "
                      "--num-processes")


def _reachable(address: str, timeout: float) -> bool:
  host, _, port = address.rpartition(":")
  deadline = time.time() + timeout
  while True:
    try:
      socket.create_connection((host, int(port)), timeout=2).close()
      return True
    except OSError:
      if time.time() >= deadline:
        return False
      time.sleep(0.5)


def barrier(name: str) -> None:
  """Every process waits here until all have arrived (a no-op with one process)."""
  import jax  # noqa: PLC0415

  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # noqa: PLC0415

    multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on at least one (e.g. a SIGTERM on one host)."""
  import jax  # noqa: PLC0415

  if jax.process_count() == 1:
    return bool(flag)
  import numpy as np  # noqa: PLC0415
  from jax.experimental import multihost_utils  # noqa: PLC0415

  return bool(np.asarray(multihost_utils.process_allgather(np.int32(bool(flag)))).any())


def check_shared_folder(folder, flag: str = "--workdir") -> None:
  """Refuses a multi-process run whose folder is not one folder for every process (each
  host's own disk): process 0 writes a nonce there, every process reads it back after a
  barrier. Orbax writes each process's checkpoint shards into the run folder, so otherwise no
  host would hold a restorable checkpoint. A folder this check created is removed again."""
  import jax  # noqa: PLC0415

  if jax.process_count() == 1:
    return
  import numpy as np  # noqa: PLC0415
  from jax.experimental import multihost_utils  # noqa: PLC0415

  folder = pathlib.Path(folder)
  nonce = int(multihost_utils.broadcast_one_to_all(
      np.int32(int.from_bytes(os.urandom(4), "little") >> 1)))
  marker = folder / f".shared-check-{nonce:08x}"
  created = False
  if jax.process_index() == 0:
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(nonce))
  barrier("llm_input: shared-folder marker written")
  try:
    seen = marker.read_text() == str(nonce)
  except OSError:
    seen = False
  every = np.asarray(multihost_utils.process_allgather(np.int32(seen))).reshape(-1)
  barrier("llm_input: shared-folder marker read")
  if jax.process_index() == 0:
    marker.unlink(missing_ok=True)
  blind = [i for i, ok in enumerate(every) if not ok]
  if blind:
    if created and jax.process_index() == 0 and not any(folder.iterdir()):
      folder.rmdir()
    raise ConfigError(f"{flag} {folder} is not one folder for every process: process(es) {blind} "
                      "do not see what process 0 writes there (each host's own disk?). Give every "
                      "process a folder they all mount, e.g. a Cloud Storage FUSE (gcsfuse) or NFS "
                      f"path, as {flag}")


def check_same_config(config_json: str) -> None:
  """Refuses to start when the processes were launched with different configs."""
  import jax  # noqa: PLC0415

  if jax.process_count() == 1:
    return
  import numpy as np  # noqa: PLC0415
  from jax.experimental import multihost_utils  # noqa: PLC0415

  digest = np.frombuffer(hashlib.sha256(config_json.encode()).digest()[:8], np.int64)[0]
  every = np.asarray(multihost_utils.process_allgather(digest)).reshape(-1)
  differ = [i for i, d in enumerate(every) if d != every[0]]
  if differ:
    raise ConfigError(f"processes {differ} were started with a config different from process 0's; "
                      "launch every process with the same command")


# -- a job on this machine -----------------------------------------------------------------------

def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def launch_local(processes: int, command: list[str], devices_per_process: int = 1,
                 grace_seconds: float = 30.0, out=sys.stdout) -> int:
  """Runs `llm-input COMMAND...` as `processes` JAX processes on this machine (CPU, gloo),
  each with `devices_per_process` simulated devices. Output lines are prefixed `[pI]`;
  SIGTERM/SIGINT are forwarded to every process; if one fails the others are stopped and its
  exit code returned."""
  if processes < 1 or devices_per_process < 1:
    raise ConfigError(f"--processes and --devices-per-process must be >= 1 (got {processes}, "
                      f"{devices_per_process})")
  if not command:
    raise ConfigError("give the command after --, e.g. launch-local --processes 2 -- train "
                      "--config configs/tiny.py --workdir runs/mh")
  port = free_port()
  flags = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                   if not f.startswith("--xla_force_host_platform_device_count"))
  children: list[subprocess.Popen] = []
  pumps: list[threading.Thread] = []
  lock = threading.Lock()

  def pump(index: int, stream) -> None:
    for line in iter(stream.readline, ""):
      with lock:
        out.write(f"[p{index}] {line}")
        out.flush()

  for index in range(processes):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count={devices_per_process}".strip(),
               **{ENV_COORDINATOR: f"localhost:{port}", ENV_NUM_PROCESSES: str(processes),
                  ENV_PROCESS_ID: str(index), "PYTHONUNBUFFERED": "1"})
    child = subprocess.Popen([sys.executable, "-m", "llm_input.cli", *command], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    children.append(child)
    pumps.append(threading.Thread(target=pump, args=(index, child.stdout), daemon=True))
    pumps[-1].start()

  def forward(signum, frame):
    for child in children:
      if child.poll() is None:
        child.send_signal(signum)

  previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    failed = None
    while True:
      codes = [child.poll() for child in children]
      bad = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
      if bad:
        failed = bad[0]
        break
      if all(c == 0 for c in codes):
        return 0
      time.sleep(0.1)
    index, code = failed
    with lock:
      out.write(f"[launch-local] process {index} exited with {code}; stopping the others\n")
    _stop(children, grace_seconds)
    return code if code > 0 else 128 - code
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
    for child in children:
      if child.poll() is None:
        child.kill()
      child.wait()
    for thread in pumps:
      thread.join(timeout=5)


def _stop(children, grace_seconds: float) -> None:
  for child in children:
    if child.poll() is None:
      child.terminate()
  deadline = time.time() + grace_seconds
  while time.time() < deadline and any(c.poll() is None for c in children):
    time.sleep(0.1)
  for child in children:
    if child.poll() is None:
      child.kill()
