"""Data parallelism across processes: MPI through mpi4py, one rank per GPU (or CPU socket).

Single-process runs never touch MPI: :func:`world` imports mpi4py only when the environment
shows an MPI launcher (``mpirun``/``mpiexec``/``srun --mpi``: PMI_*, OMPI_*, PMIX_*, MV2_*
variables) or ``SNNCC_MPI=1``; ``SNNCC_MPI=0`` turns detection off.

What the training code asks of a :class:`Communicator`:

* ``rank``/``size``/``is_root``; :meth:`Communicator.shard` splits a global batch into
  contiguous per-rank shares (uneven splits: sizes differ by at most one, empty shares allowed).
* :meth:`Communicator.first_rank0`: rank 0 runs a function (compiling the kernels into the
  content-hash build cache) before the others; then one rank per node (a node without the
  shared cache compiles once), then everyone else, who all hit the cache.
* :meth:`Communicator.reduce`: the per-step collective. Gradients are all-reduced on host
  buffers, one non-blocking ``Iallreduce`` per trainable parameter, posted as soon as that
  parameter's local gradient is on the host; the losses/accuracy counts and an error flag travel
  in one more small ``Iallreduce`` posted last. See "What overlaps" below.
* :meth:`Communicator.agree`: a collective error check. A rank that failed says so; then every
  rank raises :class:`RankFailure` naming the failed rank(s) and their errors, so all stop
  together with the same message instead of hanging in the next collective.

What overlaps (per step, ``P`` parameters, in order p = 1..P):

1. the device->host copy of p's gradient from each local device and their sum in device order
   (:meth:`Communicator.reduce` calls ``fetch(p)``), then ``Iallreduce(p)`` is posted;
2. while p is in flight the same happens for p+1: the network reduction of p overlaps the
   copies and host sums of p+1..P, and the metrics reduction;
3. results are waited for in order; as soon as p is reduced it is uploaded to every local device
   (``on_ready``), overlapping the reduction of p+1..P still in flight.
On this host path the kernels are not overlapped with any reduction: a pass's gradients are
copied out once it has ended. The CUDA devices of one process can instead sum them where they
live (:class:`DeviceReducer`, NCCL), the readout's while the hidden backward still runs.
MPICH and Open MPI progress non-blocking collectives only inside MPI calls unless an async
progress thread is enabled (``MPIR_CVAR_ASYNC_PROGRESS=1`` / ``OMPI_MCA_opal_progress_thread``)
or the network offloads them, so :meth:`Communicator.reduce` calls ``Testall`` on the requests
in flight after each copy and after each upload to drive progress.

NCCL: :class:`NcclReducer` is a hook for all-reducing the gradient buffers where they live on
the GPU (cupy.cuda.nccl, communicator id broadcast over MPI). It is opt-in (``SNNCC_NCCL=1``)
and untested in CI (no GPU there); see docs/scaling.md.

Faults: :meth:`Communicator.reduce` and :meth:`Communicator.agree` turn an exception on one rank
into a :class:`RankFailure` on all ranks. An exception escaping anywhere else on a rank of a
multi-rank job goes to :func:`excepthook` (installed by :func:`world`), which prints
``snncc: rank N failed: ...`` with the traceback to stderr and calls ``MPI_Abort``, so the
launcher stops every rank and exits non-zero.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np

from snncc.errors import SnnccError

#: Environment variables set by MPI launchers (MPICH/Intel MPI Hydra and PMI-2 srun, Open MPI,
#: PMIx, MVAPICH).
LAUNCHER_ENV = (
    "PMI_RANK",
    "PMI_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_SIZE",
)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class RankFailure(SnnccError):
    """One or more ranks failed; raised on every rank of the job, naming them.

    ``ranks``: the failed ranks; ``messages``: {rank: "Type: message"}.
    """

    def __init__(self, messages: dict[int, str], what: str = ""):
        self.messages = dict(sorted(messages.items()))
        self.ranks = list(self.messages)
        self.what = what
        where = f" while {what}" if what else ""
        if len(self.ranks) == 1:
            ((r, m),) = self.messages.items()
            text = f"rank {r} failed{where}: {m}"
        else:
            names = ", ".join(map(str, self.ranks))
            text = f"ranks {names} failed{where}: " + "; ".join(
                f"rank {r}: {m}" for r, m in self.messages.items()
            )
        super().__init__(text)


def describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def launched_by_mpi(environ: dict | None = None) -> bool:
    """True if an MPI launcher started this process (or SNNCC_MPI=1 asks for MPI)."""
    env = os.environ if environ is None else environ
    flag = env.get("SNNCC_MPI", "").strip().lower()
    if flag in _TRUE:
        return True
    if flag in _FALSE:
        return False
    return any(k in env for k in LAUNCHER_ENV)


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise SnnccError(
            "this process was started by an MPI launcher (or SNNCC_MPI=1), but mpi4py is not "
            f"importable ({err}); pip install 'snncc[mpi]' and an MPI library, e.g. "
            "'pip install mpich' or 'apt-get install mpich' (SNNCC_MPI=0 runs without MPI)"
        ) from None
    except RuntimeError as err:  # mpi4py present, libmpi missing
        raise SnnccError(
            f"mpi4py cannot load an MPI library ({err}); install one, e.g. 'pip install mpich' "
            "or 'apt-get install mpich' (SNNCC_MPI=0 runs without MPI)"
        ) from None
    return MPI


class Communicator:
    """Rank, size and the few collectives data-parallel training needs.

    ``Communicator(None)`` is the single process: every collective is local and exceptions are
    re-raised unchanged.
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self._local = None

    def __repr__(self) -> str:
        kind = "MPI" if self.comm is not None else "single process"
        return f"Communicator({kind}, rank {self.rank} of {self.size})"

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1

    @property
    def local_rank(self) -> int:
        """This rank's index among the ranks of its node (0 without MPI)."""
        if self._local is None:
            if self.comm is None:
                self._local = (0, 1)
            else:
                node = self.comm.Split_type(_mpi().COMM_TYPE_SHARED, key=self.rank)
                self._local = (node.Get_rank(), node.Get_size())
                node.Free()
        return self._local[0]

    # --------------------------------------------------------------------- sharding
    @staticmethod
    def split(n: int, parts: int) -> list[tuple[int, int]]:
        """Contiguous (start, stop) of ``n`` items over ``parts``; sizes differ by <= 1."""
        bounds = [n * k // parts for k in range(parts + 1)]
        return [(bounds[k], bounds[k + 1]) for k in range(parts)]

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's contiguous share (start, stop) of ``n`` examples."""
        return self.split(n, self.size)[self.rank]

    def max_share(self, n: int) -> int:
        """The largest per-rank share of ``n`` (what a rank's capacity must hold)."""
        return -(-n // self.size)

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if self.comm is not None:
            self.comm.Barrier()

    def _fail(self, error: BaseException | None, what: str) -> None:
        """Every rank: gather the failed ranks' messages and raise RankFailure."""
        messages = self.comm.allgather(describe(error) if error is not None else None)
        failed = {r: m for r, m in enumerate(messages) if m is not None}
        failure = RankFailure(failed, what)
        if error is not None:
            raise failure from error
        raise failure

    def agree(self, error: BaseException | None = None, what: str = "") -> None:
        """Collective: raise RankFailure on every rank if any rank passes an error.

        Single process: re-raises ``error`` itself.
        """
        if not self.parallel:
            if error is not None:
                raise error
            return
        flag = np.array([1 if error is not None else 0], np.int64)
        self.comm.Allreduce(_mpi().IN_PLACE, flag, op=_mpi().SUM)
        if flag[0]:
            self._fail(error, what)

    def guarded(self, fn: Callable[[], object], what: str = "", run: bool = True) -> object:
        """Collective: run ``fn`` where ``run`` is true, then :meth:`agree` on the outcome."""
        result, error = None, None
        if run:
            try:
                result = fn()
            except Exception as err:  # reported to every rank by agree
                if not self.parallel:
                    raise
                error = err
        self.agree(error, what)
        return result

    def first_rank0(self, fn: Callable[[], object], what: str = "compiling") -> object:
        """Run ``fn`` on rank 0, then on one rank per other node, then everywhere else.

        Used for compiling: rank 0 fills the content-hash build cache, the others find it (a
        node that does not share the cache's file system compiles once, on its first rank).
        """
        if not self.parallel:
            return fn()
        result = None
        local = self.local_rank  # rank 0 is local rank 0 of its node
        for turn in (self.rank == 0, local == 0 and self.rank != 0, local != 0):
            value = self.guarded(fn, what, run=turn)
            if turn:
                result = value
        return result

    def bcast(self, obj: object) -> object:
        """Rank 0's ``obj`` on every rank (e.g. a run directory named after the clock)."""
        return self.comm.bcast(obj, root=0) if self.parallel else obj

    def bcast_from_root(self, fn: Callable[[], object], what: str = "") -> object:
        """Rank 0 computes ``fn()`` (e.g. reads a checkpoint) and every rank gets the result."""
        if not self.parallel:
            return fn()
        result = self.guarded(fn, what, run=self.is_root)
        return self.comm.bcast(result, root=0)

    def reduce(
        self,
        values: Sequence[float],
        grads: Sequence[tuple[str, Callable[[], np.ndarray], tuple[int, ...]]] = (),
        error: BaseException | None = None,
        on_ready: Callable[[str, np.ndarray], None] | None = None,
        what: str = "",
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The per-step collective: sum ``values`` and gradients over ranks; check for errors.

        ``grads``: (name, fetch, shape) in a fixed order (the same on every rank); ``fetch()``
        returns this rank's float32 gradient (device->host copy and sum over local devices).
        ``error``: this rank's local failure so far (it then contributes zeros). ``on_ready(name,
        summed)`` is called in order as each sum completes (uploads to the devices).
        Returns (summed values as float64, {name: summed gradient}); raises RankFailure on every
        rank if any rank failed (single process: re-raises the error itself).
        """
        out: dict[str, np.ndarray] = {}
        if not self.parallel:
            if error is not None:
                raise error
            for name, fetch, _ in grads:
                out[name] = fetch()
                if on_ready is not None:
                    on_ready(name, out[name])
            return np.asarray(values, np.float64), out
        MPI = _mpi()
        reqs, bufs = [], []
        for name, fetch, shape in grads:
            g = None
            if error is None:
                try:
                    g = np.array(fetch(), dtype=np.float32, order="C")
                    if g.shape != tuple(shape):
                        g = g.reshape(shape)
                except Exception as err:
                    error = err
            if g is None:
                g = np.zeros(shape, np.float32)
            reqs.append(self.comm.Iallreduce(MPI.IN_PLACE, g, op=MPI.SUM))
            bufs.append((name, g))
            MPI.Request.Testall(reqs)  # drive progress of the reductions in flight
        status = np.array([1.0 if error is not None else 0.0, *values], np.float64)
        sreq = self.comm.Iallreduce(MPI.IN_PLACE, status, op=MPI.SUM)
        late = None
        for k, ((name, g), req) in enumerate(zip(bufs, reqs, strict=True)):
            req.Wait()
            out[name] = g
            if on_ready is not None and error is None and late is None:
                try:
                    on_ready(name, g)
                except Exception as err:  # after the status went out: fatal for this rank
                    late = err
                MPI.Request.Testall(reqs[k + 1 :] + [sreq])
        sreq.Wait()
        if status[0] > 0:
            self._fail(error, what)
        if late is not None:
            raise late
        return status[1:], out

    def state_digest(self, arrays: dict[str, np.ndarray]) -> str:
        h = hashlib.sha256()
        for name in sorted(arrays):
            h.update(name.encode())
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
        return h.hexdigest()

    def sync_replicas(
        self,
        get_state: Callable[[], dict[str, np.ndarray]],
        set_state: Callable[[dict[str, np.ndarray]], None],
        what: str = "checking the replicas",
    ) -> bool:
        """Collective: make every rank's trained state equal rank 0's; True if it had to.

        Ranks step their own copies of the weights with the same all-reduced gradients, so
        they stay equal as long as the MPI sum gives every rank the same bits (what MPICH and
        Open MPI do; the MPI standard only recommends it). This checks a digest and, if any
        rank differs (or a network was built with a different seed), broadcasts rank 0's state.
        """
        if not self.parallel:
            return False
        state = self.guarded(get_state, what)
        digests = self.comm.allgather(self.state_digest(state))
        if len(set(digests)) == 1:
            return False
        state = self.comm.bcast(state if self.is_root else None, root=0)
        self.guarded(lambda: set_state(state), what)
        return True


# ----------------------------------------------------------------------- the world
_WORLD: Communicator | None = None


def world(use_mpi: bool | None = None) -> Communicator:
    """This process's communicator: MPI's COMM_WORLD under an MPI launcher, else single.

    ``use_mpi=True`` forces MPI (importing mpi4py); ``None`` detects a launcher. Under MPI with
    more than one rank, :func:`excepthook` is installed.
    """
    global _WORLD
    want = launched_by_mpi() if use_mpi is None else use_mpi
    if _WORLD is None or (want and _WORLD.comm is None):
        _WORLD = Communicator(_mpi().COMM_WORLD if want else None)
        if _WORLD.parallel and sys.excepthook is sys.__excepthook__:
            sys.excepthook = excepthook
    return _WORLD


def excepthook(etype, value, tb) -> None:
    """Uncaught exception on a rank of a multi-rank job: name the rank, then abort the job.

    A RankFailure is raised on every rank at once, so it is printed by rank 0 (and the failed
    ranks) and the ranks exit normally with status 1. Any other exception happened on this
    rank alone: the others would wait for it forever, so the job is aborted (MPI_Abort), which
    makes the launcher stop every rank and exit non-zero.
    """
    comm = _WORLD
    if comm is None or not comm.parallel:
        sys.__excepthook__(etype, value, tb)
        return
    if isinstance(value, RankFailure):
        if comm.is_root:
            sys.stderr.write(f"snncc: {value}\n")
        cause = value.__cause__
        if comm.rank in value.ranks and cause is not None:  # the failed rank adds its traceback
            text = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            sys.stderr.write(f"snncc: rank {comm.rank}: {text}")
        sys.stderr.flush()
        return
    text = "".join(traceback.format_exception(etype, value, tb))
    sys.stderr.write(f"snncc: rank {comm.rank} failed: {etype.__name__}: {value}\n{text}")
    sys.stderr.flush()
    comm.comm.Abort(1)


def abort(message: str, code: int = 1) -> None:
    """Print ``snncc: rank N failed: message`` and stop every rank of the job (MPI_Abort)."""
    comm = world()
    sys.stderr.write(f"snncc: rank {comm.rank} failed: {message}\n")
    sys.stderr.flush()
    if comm.parallel:
        # MPI_Abort makes the launcher kill every process at once; give it a moment to forward
        # this message first (once in the test suite it never reached the launcher's stderr)
        time.sleep(0.5)
        comm.comm.Abort(code)
    raise SystemExit(code)


# ------------------------------------------------------------------------ NCCL hook
class NcclReducer:
    """Hook: all-reduce gradient buffers in GPU memory with NCCL (one GPU per rank).

    Untested (no GPU in CI), so opt-in: ``SNNCC_NCCL=1``. It needs cupy with NCCL; the
    communicator id is made on rank 0 and broadcast over MPI. ``allreduce(prog, names)`` sums
    each named buffer of a CudaProgram in place on its stream, one ``ncclAllReduce`` per
    buffer inside one NCCL group, so the GPU overlaps them; the host then only reduces the
    metrics. Training uses it only when :func:`nccl_reducer` returns one.
    """

    def __init__(self, comm: Communicator, nccl):
        self.nccl = nccl
        uid = comm.comm.bcast(nccl.get_unique_id() if comm.is_root else None, root=0)
        self.nc = nccl.NcclCommunicator(comm.size, uid, comm.rank)

    def allreduce(self, prog, names: Sequence[str]) -> None:
        nccl = self.nccl
        prog.context.push()
        try:
            nccl.groupStart()
            for name in names:
                ptr = int(prog._mem[name].mem)
                count = int(np.prod(prog._present[name]))
                self.nc.allReduce(
                    ptr, ptr, count, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, prog.stream.handle
                )
            nccl.groupEnd()
            prog.stream.synchronize()
        finally:
            prog.context.pop()


class DeviceReducer:
    """All-reduce the gradients of this process's CUDA devices where they live: NCCL, one
    communicator per device (``cupy.cuda.nccl``, ``NcclCommunicator.initAll``), opt-in with
    ``SNNCC_NCCL=1``.

    The gradient pass marks the buffers it has completed (``Launch.ready``); each device's
    reduce stream waits for that point (an event) and sums them there, so the readout's
    gradients are all-reduced while the hidden populations' backward still runs. Every
    device's compute stream then waits for its reductions, so the optimiser (and any copy
    back) sees the sums. The sum's order is NCCL's, the same on every device.
    """

    def __init__(self, programs: Sequence, nccl):
        self.nccl = nccl
        self.programs = list(programs)
        self.comms = nccl.NcclCommunicator.initAll([p.device.ordinal for p in self.programs])
        self.streams = []
        for prog in self.programs:
            prog.context.push()
            try:
                self.streams.append(prog.drv.Stream())
            finally:
                prog.context.pop()
        self._pending: list[list[tuple[tuple[str, ...], object]]] = [[] for _ in self.programs]

    def collector(self, device: int):
        """The ``on_ready`` callback of ``CudaProgram.run`` for device index ``device``."""
        return lambda names, event: self._pending[device].append((names, event))

    def reduce(self, running: Sequence[bool]) -> None:
        """Enqueue the all-reduces of what the passes just launched marked ready, group by
        group; ``running[d]``: device d ran the pass (else its gradients were set to zero)."""
        nccl = self.nccl
        groups = max(len(p) for p in self._pending)
        for g in range(groups):
            nccl.groupStart()
            for d, prog in enumerate(self.programs):
                names = self._group_names(g)
                prog.context.push()
                try:
                    if running[d]:
                        self.streams[d].wait_for_event(self._pending[d][g][1])
                    for name in names:
                        ptr = int(prog._mem[name].mem)
                        count = int(np.prod(prog._present[name]))
                        self.comms[d].allReduce(
                            ptr, ptr, count, nccl.NCCL_FLOAT32, nccl.NCCL_SUM,
                            self.streams[d].handle,
                        )  # fmt: skip
                finally:
                    prog.context.pop()
            nccl.groupEnd()
        for d, prog in enumerate(self.programs):  # the optimiser and copies wait for the sums
            prog.context.push()
            try:
                prog.stream.wait_for_event(prog.drv.Event().record(self.streams[d]))
            finally:
                prog.context.pop()
        self._pending = [[] for _ in self.programs]

    def _group_names(self, g: int) -> tuple[str, ...]:
        groups = {p[g][0] for p in self._pending if g < len(p)}
        if len(groups) != 1:
            raise SnnccError(f"the devices' passes marked different gradients ready: {groups}")
        return groups.pop()


def device_reducer(programs: Sequence) -> DeviceReducer | None:
    """A DeviceReducer for several CUDA programs of one process, if asked for (SNNCC_NCCL=1)
    and cupy's NCCL imports; else None (the gradients are summed on the host)."""
    if os.environ.get("SNNCC_NCCL", "").strip().lower() not in _TRUE or len(programs) < 2:
        return None
    if not all(getattr(p, "backend", "") == "cuda" for p in programs):
        return None
    try:
        from cupy.cuda import nccl
    except Exception:  # cupy/NCCL missing here
        return None
    return DeviceReducer(programs, nccl)


def nccl_reducer(comm: Communicator, programs: Sequence) -> NcclReducer | None:
    """Collective: an NcclReducer if asked for (SNNCC_NCCL=1 on every rank), usable (one CUDA
    program per rank) and importable on every rank; else None (the MPI host path)."""
    if os.environ.get("SNNCC_NCCL", "").strip().lower() not in _TRUE or not comm.parallel:
        return None
    if len(programs) != 1 or getattr(programs[0], "backend", "") != "cuda":
        return None
    try:
        from cupy.cuda import nccl
    except Exception:  # cupy/NCCL missing here
        nccl = None
    if not comm.comm.allreduce(nccl is not None, op=_mpi().LAND):  # all ranks or none
        return None
    return NcclReducer(comm, nccl)


__all__ = [
    "Communicator",
    "DeviceReducer",
    "NcclReducer",
    "RankFailure",
    "abort",
    "device_reducer",
    "excepthook",
    "launched_by_mpi",
    "world",
]
