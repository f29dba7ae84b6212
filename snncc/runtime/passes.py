"""The pass engine: one batch through the programs of this rank, and the sums over ranks.

A *pass* is a name in the plan's manifest (codegen/targets.py): "gradient", "online",
"evaluate", ... The engine splits the global batch by rank (``comm.shard``), a rank's share
over its devices (``Communicator.split``), a device's share in chunks of at most its capacity;
it uploads each chunk, runs the pass and sums losses, correct decisions and gradients over
chunks and devices in order on the host, then over ranks (``comm.reduce``: one Iallreduce per
parameter, overlapping the next one's copy). Which pass runs is the caller's choice (the
strategy is a value, not something inferred here), so a new rule needs no change in this file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from snncc.backends.base import shape_for, static_shape
from snncc.errors import ShapeError


@dataclass
class PassResult:
    """A pass over a global batch: its gradients by buffer name (None when they were left on
    the devices, ready for the optimiser), summed loss and correct decisions, B and T."""

    gradients: dict[str, np.ndarray] | None
    loss: float
    correct: int
    B: int
    T: int


@dataclass
class _Prepared:
    """This rank's share of a batch, converted to bit words and cut into per-device chunks."""

    x: object  # the batch as given (to recognise it when staged ahead)
    B: int | None  # the global batch (under MPI), else None
    lo: int
    hi: int
    b: int  # this rank's examples
    T: int
    work: list  # per device: (program, [(start, stop, bits), ...])


class PassEngine:
    def __init__(self, model):
        self.model = model
        self._nccl_reducer = None
        self._nccl_checked = False
        self._upcoming: _Prepared | None = None  # the next batch, its first chunks staged
        self._staged: dict[int, object] = {}  # id(program) -> the chunk staged on it

    # ---------------------------------------------------------------- public
    def run(
        self,
        x: object,
        y: object,
        passes: Sequence[str],
        with_grads: bool,
        upload: bool = False,
        what: str = "",
        upcoming: object = None,
    ) -> PassResult:
        """Run ``passes`` on this rank's share of the batch and reduce over ranks.

        With ``upload`` the summed gradients are written to every device for the optimiser;
        that is skipped when one pass on the only device of the only rank left them there.
        ``upcoming``: the inputs of the next call's batch, whose upload a program that stages
        (CUDA) begins while this batch's last kernels run (the next call must pass it as x).
        A failure on any rank raises RankFailure on every rank (single process: the error).
        """
        m = self.model
        comm = m.comm
        B, T, loss, correct, held, error = 0, 0, 0.0, 0, [], None
        try:
            B, T, loss, correct, held = self._local(x, y, passes, with_grads, comm, upcoming)
        except Exception as err:  # reported to every rank by comm.reduce
            if not comm.parallel:
                raise
            error = err
        specs, on_ready = [], None
        what = what or "running a batch"
        names = self.grad_names()
        if held == "reduced":  # every device holds the sum already (DeviceReducer, NCCL)
            grads = None if upload else {g: m.programs[0].get(g) for g in names}
            return PassResult(grads, loss, correct, B, T)
        n_passes = sum(len(earlier) + last for _, earlier, last in held)
        nccl = self._nccl() if with_grads and upload else None
        if nccl is not None:  # the same choice on every rank: one CUDA device each, opt-in
            values, _ = comm.reduce([loss, correct], (), error, what=what)
            prog = m.programs[0]
            if n_passes != 1:  # several chunks (summed here) or none (zeros) on this rank
                for g in names:
                    prog.set(g, _local_gradient(g, held, self._shape(g)))
            nccl.allreduce(prog, names)
            return PassResult(None, float(values[0]), int(values[1]), B, T)
        in_place = upload and not comm.parallel and len(m.programs) == 1 and n_passes == 1
        if with_grads and not in_place:
            for g in names:
                shape = self._shape(g)
                specs.append((g, partial(_local_gradient, g, held, shape), shape))
            if upload:

                def on_ready(name: str, value: np.ndarray) -> None:
                    for prog in m.programs:
                        prog.set(name, value)

        values, total = comm.reduce([loss, correct], specs, error, on_ready, what=what)
        return PassResult(total if specs else None, float(values[0]), int(values[1]), B, T)

    def grad_names(self) -> list[str]:
        return [f"grad_{name}" for _, name, _ in self.model.training.params]

    def global_steps(self, x: object) -> int | None:
        """T of event-list inputs over the whole batch (None for dense arrays or if unclear).

        A shard's own events may end earlier; every rank must run the steps the full batch
        would, or the loss (and gradients) would differ from a single process.
        """
        items = x.values() if isinstance(x, Mapping) else [x]
        steps = set()
        for events in items:
            if not isinstance(events, (list, tuple)):  # dense: every shard has the same T
                shape = getattr(events, "shape", ())
                if len(shape) != 3:
                    return None
                steps.add(int(shape[1]))
                continue
            try:
                ends = [
                    np.floor(np.asarray(t, np.float64) / self.model.net.dt).max() + 1
                    for t, _ in events
                    if len(t)
                ]
            except Exception:  # malformed: the conversion will say what is wrong
                return None
            steps.add(int(max(ends, default=1)))
        return steps.pop() if len(steps) == 1 else None

    # --------------------------------------------------------------- internals
    def _shape(self, grad: str) -> tuple[int, ...]:
        return static_shape(self.model.plan.buffer(grad), self.model.batch_size)

    def _device_reducer(self):
        """The DeviceReducer of this process's CUDA devices (parallel.device_reducer) where
        asked for and usable, else None."""
        if not hasattr(self, "_devices_reducer"):
            from snncc.runtime.parallel import device_reducer

            single = not self.model.comm.parallel
            self._devices_reducer = device_reducer(self.model.programs) if single else None
        return self._devices_reducer

    def _nccl(self):
        """The NCCL reducer (parallel.NcclReducer) where asked for and usable, else None."""
        if not self._nccl_checked:
            from snncc.runtime.parallel import nccl_reducer

            self._nccl_reducer = nccl_reducer(self.model.comm, self.model.programs)
            self._nccl_checked = True
        return self._nccl_reducer

    def _prepare(self, x: object, comm) -> _Prepared:
        """This rank's share of ``x`` as bit words, in chunks per device (reused when ``x`` is
        the upcoming batch staged by the previous call)."""
        ahead, self._upcoming = self._upcoming, None
        if ahead is not None and ahead.x is x:
            return ahead
        self._staged.clear()
        m = self.model
        n_steps, B, lo, hi = None, None, 0, None
        if comm.parallel:
            B = _batch_len(x)
            lo, hi = comm.shard(B)
            n_steps = self.global_steps(x)  # events: every shard runs the full batch's T
            if hi == lo:  # fewer examples than ranks: nothing to do here
                return _Prepared(x, B, lo, hi, 0, 0, [])
            converted, b, T = m.convert_inputs(_take(x, lo, hi), n_steps)
        else:
            converted, b, T = m.convert_inputs(x)
            hi = b
        shares = comm.split(b, len(m.programs))
        work = [
            (prog, m.chunks(converted, T, a, z))
            for prog, (a, z) in zip(m.programs, shares, strict=True)
        ]
        return _Prepared(x, B, lo, hi, b, T, work)

    def _stage_upcoming(self, upcoming: object, comm) -> None:
        """Convert the next batch and stage its first chunk on every device that stages.

        Its errors are left for the call that runs it (they belong to that batch)."""
        m = self.model
        if not any(prog.stages_inputs for prog in m.programs):  # the CPU: nothing to do
            return
        try:
            ahead = self._prepare(upcoming, comm)
        except Exception:
            return
        for prog, chunks in ahead.work:
            if chunks and m._stage_inputs(prog, chunks[0][2]):
                self._staged[id(prog)] = chunks[0][2]
        self._upcoming = ahead

    def _local(self, x, y, passes: Sequence[str], with_grads: bool, comm, upcoming=None):
        """This rank's passes: (B, T, loss, correct, held gradients).

        ``held`` has one (program, [gradients of its earlier chunks], whether its last chunk's
        gradients are still in its buffers) per device; ``_local_gradient`` sums them.
        """
        m = self.model
        names = self.grad_names() if with_grads else []
        prep = self._prepare(x, comm)
        if comm.parallel:
            y_all = np.asarray(y)
            if len(y_all) != prep.B:
                raise ShapeError(f"{len(y_all)} labels/targets for a batch of {prep.B} examples")
            if prep.hi == prep.lo:
                return prep.B, 0, 0.0, 0, []
            y = y_all[prep.lo : prep.hi]
        b, T, work = prep.b, prep.T, prep.work
        y = m._check_targets(y, b, T)
        decides = m.training.readout.loss.score is not None
        loss, correct = 0.0, 0
        earlier: list[list] = [[] for _ in work]
        rounds = max((len(c) for _, c in work), default=0)
        # several devices, one chunk each: their gradients can be summed where they live
        reducer = self._device_reducer() if names and rounds == 1 else None
        # round k launches chunk k on every device first, stages chunk k + 1 (or the next
        # batch's first) for the devices that stage, then collects: GPUs overlap
        for k in range(rounds):
            live = [
                (d, prog, chunks[k]) for d, (prog, chunks) in enumerate(work) if k < len(chunks)
            ]
            for d, prog, (start, stop, chunk) in live:
                staged = self._staged.pop(id(prog), None) is chunk
                on_ready = reducer.collector(d) if reducer is not None else None
                self._launch(prog, chunk, stop - start, y[start:stop], T, passes, staged, on_ready)
            if reducer is not None:
                for prog, chunks in work:
                    if not chunks:  # no example here: it adds zeros
                        for g in names:
                            prog.set(g, np.zeros(self._shape(g), np.float32))
                reducer.reduce([bool(chunks) for _, chunks in work])
            if k + 1 < rounds:
                for d, prog, _ in live:
                    if k + 1 < len(work[d][1]):
                        nxt = work[d][1][k + 1][2]
                        if m._stage_inputs(prog, nxt):
                            self._staged[id(prog)] = nxt
            elif upcoming is not None:
                self._stage_upcoming(upcoming, comm)
            for d, prog, (start, stop, _) in live:
                part_loss, decided = self._collect(prog, stop - start)
                loss += part_loss
                if decides:
                    correct += int(np.sum(decided == y[start:stop]))
                if names and k < len(work[d][1]) - 1:  # the next pass overwrites them
                    earlier[d].append({g: prog.get(g) for g in names})
        held = [
            (prog, earlier[d], bool(chunks) and bool(names))
            for d, (prog, chunks) in enumerate(work)
        ]
        if reducer is not None:
            held = "reduced"
        return (b if prep.B is None else prep.B), T, loss, correct, held

    def _launch(
        self,
        prog,
        chunk: dict,
        b: int,
        y: np.ndarray,
        T: int,
        passes: Sequence[str],
        staged: bool = False,
        on_ready=None,
    ) -> None:
        """Upload one chunk of b <= capacity examples (``staged``: its upload was begun) and
        launch ``passes`` on ``prog`` (``on_ready``: told when gradients are complete)."""
        m = self.model
        tr = m.training
        m._upload_inputs(prog, chunk, staged)
        prog.reset_state()
        cap, K = m.batch_size, tr.readout.size
        labels = np.zeros(cap, np.int32)
        if tr.readout.loss.reads_target:
            targets = np.zeros((cap, T, K), np.float32)
            targets[:b] = y
            prog.set("targets", targets)
        else:
            labels[:b] = y
        prog.set("labels", labels)
        prog.set("loss", np.zeros(cap, np.float32))
        scalars = m.plan.buffer("rule_scalars")
        values = np.array(scalars.init, np.float32)
        if tr.rule.average_gradient:  # NEST: the gradient is the mean over the counted steps
            values[scalars.slots.index("grad_scale")] = 1.0 / max(T - tr.rule.error_start, 1)
        prog.set("rule_scalars", values)
        prog.set("score", np.full((cap, K), tr.readout.loss.score_init, np.float32))
        online = "online" in passes
        for buf in m.plan.buffers:
            if buf.name == "err":  # online: only the current chunk's steps
                steps = tr.online.chunk if online else T
                prog.ensure(buf.name, shape_for(buf, cap, steps), zero=False)
            elif buf.role == "record":  # training records nothing (a stale one has another T)
                prog.drop(buf.name)
            elif buf.role == "history" and not online:
                prog.ensure(buf.name, shape_for(buf, cap, T), zero=False)
            elif buf.role == "online" and online:  # traces and sums start at 0 every pass
                prog.ensure(buf.name, shape_for(buf, cap, T), zero=True)
        for name in passes:  # asynchronous on a GPU: devices work at the same time
            if on_ready is None:
                prog.run(name, b, T)
            else:
                prog.run(name, b, T, on_ready=on_ready)

    @staticmethod
    def _collect(prog, b: int) -> tuple[float, np.ndarray]:
        """(loss, class decisions) of the pass last launched on ``prog`` (waits for it).

        The kernel sums the decision scores as it computes the error, so no (B, T, K) output
        comes back to the host (its float64 softmax here cost ~10 % of a CPU training step).
        """
        loss = float(prog.get("loss")[:b].sum(dtype=np.float64))
        return loss, prog.get("score")[:b].argmax(-1)


def _local_gradient(name: str, held: list, shape: tuple[int, ...]) -> np.ndarray:
    """Sum of one gradient over this rank's chunks and devices, in order (deterministic)."""
    total = None
    for prog, earlier, last in held:
        parts = [e[name] for e in earlier] + ([prog.get(name)] if last else [])
        for part in parts:
            total = part if total is None else total + part
    return total if total is not None else np.zeros(shape, np.float32)


def _batch_len(x: object) -> int:
    """Examples in a batch of inputs (the first input's, for a dict of inputs)."""
    if isinstance(x, Mapping):
        x = next(iter(x.values()), ())
    try:
        return len(x)
    except TypeError:
        raise ShapeError(f"inputs: expected a batch of examples, got {type(x).__name__}") from None


def _take(x: object, lo: int, hi: int) -> object:
    """Examples lo..hi of a batch of inputs (array, list of event pairs, or dict of them)."""
    if isinstance(x, Mapping):
        return {k: v[lo:hi] for k, v in x.items()}
    return x[lo:hi]
