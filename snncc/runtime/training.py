"""Training methods of CompiledModel: gradients, train_batch, fit, evaluate, predict, save/load.

Per batch: forward (time loop in generated code, histories stored), backward (adjoint
recursions), accumulate (event-driven dW = s^T Q) and, for train_batch, one optimiser step.
With several devices the batch is split, each device computes its share and the gradients are
summed in device order before the same optimiser step runs everywhere. Under MPI (one process
per rank, see runtime/parallel.py) the global batch is first split by rank; each rank sums its
devices' gradients, the ranks all-reduce them (one non-blocking reduction per parameter), and
every rank takes the same optimiser step on its own copy of the weights. Only rank 0 writes
checkpoints and calls ``on_epoch``.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from snncc.backends.base import shape_for
from snncc.errors import ModelError, ShapeError, TrainingError, UnknownNameError
from snncc.model.values import check_number

#: Bytes the factorised strategy may use for histories before "auto" switches to online.
MEMORY_BUDGET = int(os.environ.get("SNNCC_MEMORY_BUDGET", 4 << 30))


class TrainingMixin:
    @property
    def comm(self):
        """This process's communicator (MPI ranks, or the single process)."""
        comm = self.__dict__.get("_comm")
        if comm is None:
            from snncc.runtime.parallel import world

            comm = world()
        return comm

    # ------------------------------------------------------------------ checks
    def _require_training(self) -> None:
        if self.training is None:
            raise ModelError(
                "this model was compiled without a learning rule; compile with "
                "rule=snncc.rules.EProp(readout=...) to train or take gradients"
            )

    @property
    def readout(self):
        return self.net.populations[self.training.rule.readout]

    def _check_targets(self, y: object, B: int, T: int) -> np.ndarray:
        K = self.readout.size
        y = np.asarray(y)
        if self.training.rule.loss == "cross_entropy":
            if y.shape != (B,) or not np.issubdtype(y.dtype, np.integer):
                raise ShapeError(
                    f"labels: expected {B} integer class labels, got shape {y.shape}, dtype "
                    f"{y.dtype}"
                )
            bad = (y < 0) | (y >= K)
            if bad.any():
                raise ShapeError(
                    f"labels: {int(y[bad][0])} is out of range for readout '{self.readout.name}'"
                    f" with {K} classes; labels must be in [0, {K})"
                )
            return y.astype(np.int32)
        if y.shape != (B, T, K) or not np.issubdtype(y.dtype, np.number):
            raise ShapeError(
                f"targets: expected a (batch, time, {K}) = {(B, T, K)} array for "
                f"the mse loss, got {y.shape}"
            )
        if not np.all(np.isfinite(y)):
            raise ShapeError("targets contain NaN or inf")
        return y.astype(np.float32)

    def _check_labels(self, data: object, what: str, shuffled: bool) -> None:
        """The data's form and all its labels, before a first batch trains on some of them."""
        _check_data(data, what, shuffled)
        if hasattr(data, "batches"):
            if not hasattr(data, "y"):  # another dataset type: its batches are checked each
                return
            x, y = getattr(data, "x", None), data.y
        else:
            x, y = data
        y = np.asarray(y)
        if not self.training.readout.loss.reads_target:
            self._check_targets(y, len(y), 0)
        elif isinstance(x, np.ndarray) and x.ndim == 3:
            self._check_targets(y, len(y), x.shape[1])

    # --------------------------------------------------------------- passes
    #: the passes (of the plan's manifest) that compute one batch's gradients, by strategy
    gradient_passes = {"factorized": ("gradient",), "online": ("online",)}

    @property
    def _engine(self):
        engine = self.__dict__.get("_pass_engine")
        if engine is None:
            from snncc.runtime.passes import PassEngine

            engine = self._pass_engine = PassEngine(self)
        return engine

    def strategy(self, T: int) -> str:
        """ "factorized" or "online" for sequences of T steps (see EProp.strategy)."""
        self._require_training()
        wanted, tr = self.training.rule.strategy, self.training
        if wanted == "online" and tr.online is None:
            raise ModelError(
                "EProp(strategy='online') is generated for the CPU backend, without the "
                "per-sequence regulariser and with one readout time constant; use "
                "strategy='factorized' here"
            )
        if wanted != "auto":
            return wanted
        need = sum(
            np.prod(shape_for(b, self.batch_size, T)) * 4
            for b in self.plan.buffers
            if b.role == "history"
        )
        return "online" if tr.online is not None and need > MEMORY_BUDGET else "factorized"

    def _forward_backward(self, x: object, y: object, **kw):
        self._require_training()
        T = self._engine.global_steps(x)  # cheap: no conversion just to pick the strategy
        if T is None:
            T = self.convert_inputs(x)[2]
        passes = self.gradient_passes[self.strategy(T)]
        return self._engine.run(x, y, passes, True, **kw)

    # ------------------------------------------------------------------ public
    def feedback(self, population: str) -> np.ndarray:
        """The fixed feedback matrix B (n_hidden, n_readout) of a hidden population."""
        return self.programs[0].get(self._feedback_buffer(population))

    def set_feedback(self, population: str, matrix: np.ndarray) -> None:
        """Replace the random feedback matrix B of ``population`` (e.g. to reproduce a paper)."""
        name = self._feedback_buffer(population)
        shape = (self.net.populations[population].size, self.readout.size)
        matrix = np.asarray(matrix)
        if matrix.shape != shape or not np.all(np.isfinite(matrix)):
            raise ShapeError(
                f"feedback of '{population}': expected a finite {shape} array, got {matrix.shape}"
            )
        for prog in self.programs:
            prog.set(name, matrix.astype(np.float32))

    def _feedback_buffer(self, population: str) -> str:
        self._require_training()
        hidden = self.training.hidden.get(population)
        if hidden is None:
            raise UnknownNameError(
                f"'{population}' is not a trained hidden population; they are "
                f"{', '.join(self.training.hidden) or 'none'}"
            )
        if not hidden.feedback.startswith("feedback_"):
            raise ModelError(
                f"'{population}' has no random feedback matrix: its feedback is symmetric (the "
                "readout weights) or exact (BPTT); compile with EProp(feedback='random') for a "
                "fixed random one"
            )
        return hidden.feedback

    def gradients(self, x: object, y: object) -> dict[str, np.ndarray]:
        """This batch's gradients, without changing any weight.

        One entry per trainable projection (shaped like its weights, (pre, post)) and
        ``"<readout>.<param>"`` (e.g. ``"output.bias"``) for trained readout parameters.
        Under MPI every rank passes the same global batch and gets the sum over all ranks.
        """
        result = self._forward_backward(x, y, what="computing gradients")
        named = self._named(result.gradients)
        bad = [key for key, g in named.items() if not np.isfinite(g).all()]
        if bad:  # returned as computed (a user may want to look), but never silently
            warnings.warn(
                f"the gradients of {', '.join(bad)} hold NaN or inf: check the model's "
                "parameters (e.g. a threshold of 0 in a surrogate) and the input scaling",
                RuntimeWarning,
                stacklevel=2,
            )
        return named

    def _public_name(self, kind: str, name: str) -> str:
        """A trained quantity as the API names it: 'in_hid', or 'output.bias' (not its buffer)."""
        if kind == "weight":
            return name
        pop, param = self.training.owners[name]
        return f"{pop}.{param}"

    def _named(self, total: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for kind, name, _ in self.training.params:
            g = total[f"grad_{name}"]
            if kind == "weight":
                q = self.net.projections[name]
                if q.sparse:
                    dense = np.zeros((q.pre.size, q.post.size), np.float32)
                    dense[q.mask] = g
                    g = dense
                out[name] = g.reshape(q.pre.size, q.post.size)
            else:
                out[self._public_name(kind, name)] = g
        return out

    def train_batch(self, x: object, y: object) -> dict[str, float]:
        """One optimiser step on this batch; returns its loss and accuracy.

        Under MPI every rank passes the same global batch (each computes its share) and gets
        the loss and accuracy of the whole batch.
        """
        return self._train_step(x, y)

    def _train_step(self, x: object, y: object, upcoming: object = None) -> dict[str, float]:
        """train_batch; ``upcoming``: the next step's inputs, uploaded meanwhile (CUDA)."""
        if self.optimizer is None:
            raise ModelError(
                "train_batch needs an optimizer: compile(..., optimizer=snncc.optim.Adam())"
            )
        if self.diverged:
            raise TrainingError(
                f"training stopped: {self.diverged}. Restore a good state first "
                "(snncc.load of a checkpoint, or load_state_dict)"
            )
        what = f"training step {self.step + 1}"
        result = self._forward_backward(x, y, upload=True, what=what, upcoming=upcoming)
        loss, correct, B = result.loss, result.correct, result.B
        if not math.isfinite(loss):  # the global loss: every rank stops here alike
            raise TrainingError(
                f"the loss is {loss} at optimiser step {self.step + 1}; no weight was changed. "
                "Lower the learning rate or check the input scaling."
            )
        self.step += 1
        clamp = self.training.rule.weight_clamp or (-3.4e38, 3.4e38)
        scalars = np.array([*self.optimizer.scalars(self.step), *clamp], np.float32)
        health = np.zeros((len(self.training.params), 2), np.float32)
        for prog in self.programs:  # the summed gradients are on every device already
            prog.set("opt_scalars", scalars)
            prog.set("opt_health", health)
            prog.run("optimize", self.batch_size, 1)
        self._check_health(self.programs[0].get("opt_health"))
        out = {"loss": loss / B}
        if self.training.readout.loss.score is not None:
            out["accuracy"] = correct / B
        return out

    #: |w| beyond which training is said to diverge (weights of these networks are O(1))
    DIVERGING = 1e4
    #: |w| at which training stops: from 2^24 on, a float32 weight cannot change by less than 1,
    #: so no learning rate could bring it back
    DIVERGED = 2.0**24

    @property
    def diverged(self) -> str | None:
        """Why training stopped (weights NaN, infinite or beyond DIVERGED), or None. Such a
        model refuses to train on or to be saved until a good state is loaded."""
        return self.__dict__.get("_diverged")

    def _check_health(self, health: np.ndarray) -> None:
        """Stop when a step made weights NaN, infinite or hopelessly large; warn (once) when
        they explode."""
        names = [self._public_name(kind, name) for kind, name, _ in self.training.params]
        lr = self.optimizer.lr_at(self.step)
        fix = (
            "Lower the learning rate, or check the model's parameters (e.g. a threshold of 0 in "
            "a surrogate) and the input scaling."
        )
        for name, (wmax, bad) in zip(names, health, strict=True):
            if bad > 0:
                self._diverged = f"optimiser step {self.step} made '{name}' NaN or infinite"
                raise TrainingError(
                    f"optimiser step {self.step} made {int(bad)} values of '{name}' NaN or "
                    f"infinite (learning rate {lr:g}); training stopped and these weights are "
                    f"unusable. {fix}"
                )
            if wmax > self.DIVERGING and not self.__dict__.get("_warned_diverging"):
                self._warned_diverging = True
                warnings.warn(
                    f"training is diverging: |w| of '{name}' reached {wmax:.3g} at optimiser "
                    f"step {self.step} (learning rate {lr:g}); lower the learning rate",
                    RuntimeWarning,
                    stacklevel=3,
                )
            if wmax >= self.DIVERGED:
                self._diverged = f"optimiser step {self.step} took |w| of '{name}' to {wmax:.3g}"
                raise TrainingError(
                    f"training diverged: optimiser step {self.step} took |w| of '{name}' to "
                    f"{wmax:.3g} (learning rate {lr:g}), beyond 2^24 = {self.DIVERGED:.3g}, where "
                    "a float32 weight can no longer change by less than 1; training stopped and "
                    f"these weights are unusable. {fix}"
                )

    def _decide(self, outputs: np.ndarray) -> np.ndarray:
        """The class decisions of recorded readout outputs: the same score update as the
        kernels, from the rule's equations (symbolic/loss.py)."""
        from snncc.symbolic.loss import decide

        return decide(self.training.readout.loss, outputs, self.training.rule.error_start)

    def predict(self, x: object) -> np.ndarray:
        """Class predictions (readout decision) for every example of ``x``."""
        readout = self.training.rule.readout if self.training else None
        if readout is None:
            raise ModelError("predict needs a readout: compile with rule=EProp(readout=...)")
        key = f"{readout}.{self.net.populations[readout].model.output_var}"
        return self._decide(self.run(x, record=[key])[key])

    def evaluate(self, data, batch_size: int | None = None) -> dict[str, float]:
        """Mean loss and accuracy over a dataset (anything with .batches(), or (x, y)).

        Under MPI every rank must call it; each evaluates its shard of every batch.
        """
        self._require_training()
        self._check_labels(data, "evaluate: data", shuffled=False)
        if batch_size is not None:
            check_number(batch_size, "evaluate: batch_size", minimum=1, integer=True)
        loss, correct, n = 0.0, 0, 0
        bs = batch_size or self.batch_size * len(self.programs) * self.comm.size
        for x, y in _batches(data, bs):
            result = self._engine.run(x, y, ("evaluate",), False, what="evaluating")
            loss += result.loss
            n += result.B
            correct += result.correct
        out = {"loss": loss / max(n, 1)}
        if self.training.readout.loss.score is not None:
            out["accuracy"] = correct / max(n, 1)
        return out

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue training exactly, as named NumPy arrays:

        ``{"structure": ..., "step": n, "weights": {projection: (pre, post)},
        "params": {"pop.param": (n,)}, "optimizer": {"<state>/<parameter>": (size,)},
        "feedback": {population: (n_hidden, n_readout)}}``. ``structure`` describes the
        network it belongs to (its spec without the initial weights), so that
        :meth:`load_state_dict` can refuse the state of another model.
        """
        from snncc.model.spec import structure

        prog = self.programs[0]
        optimizer = {}
        if self.training is not None and self.training.optimizer is not None:
            for _, name, _ in self.training.params:
                for s in self.training.optimizer.state:
                    optimizer[f"{s}/{name}"] = prog.get(f"opt_{s}_{name}")
        feedback = {}
        if self.training is not None:
            for h in self.training.hidden.values():
                if h.feedback.startswith("feedback_"):
                    feedback[h.name] = prog.get(h.feedback)
        return {
            "structure": structure(self.net),
            "step": self.step,
            "weights": {name: self.weights[name] for name in self.weights},
            "params": {key: self.params.exact(key) for key in self.params},
            "optimizer": optimizer,
            "feedback": feedback,
        }

    def load_state_dict(self, state: Mapping, strict: bool = True) -> None:
        """Load a :meth:`state_dict`. Every array is checked (names, shapes, dtypes, finite
        values) before anything is uploaded. ``strict=False`` skips the check that the state
        belongs to this network (its structure), e.g. to load weights into a model whose
        parameters were changed on purpose."""
        from snncc.model.spec import first_difference

        expected = self.state_dict()  # the names and shapes this model has
        if not isinstance(state, Mapping):
            raise ShapeError(f"state: expected state_dict()'s dict, got {type(state).__name__}")
        _same_keys(state, expected, "state")
        if strict:
            diff = first_difference(expected["structure"], state["structure"])
            if diff is not None:
                raise ModelError(
                    f"this state belongs to another network ({diff}, this model vs the state); "
                    "load it into the model it was saved from, or pass strict=False to load "
                    "arrays of matching shapes anyway"
                )
        step = state["step"]
        if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
            raise ShapeError(f"state['step'] must be an integer >= 0, got {step!r}")
        for group in ("weights", "params", "optimizer", "feedback"):
            _same_keys(state[group], expected[group], f"state['{group}']")
            for key, ref in expected[group].items():
                _check_array(state[group][key], ref, f"state['{group}']['{key}']")
        for name, value in state["weights"].items():
            self.weights[name] = value
        by_population: dict[str, dict] = {}
        for key, value in state["params"].items():
            pop, _, name = key.partition(".")
            by_population.setdefault(pop, {})[name] = self.params.as_stored(
                key, np.asarray(value, np.float64), f"state['params']['{key}']"
            )
        for pop, values in by_population.items():
            self.net.populations[pop].model._check_positive(values)
            self._set_population_params(self.plan.pop(pop), values)
        for key, value in state["optimizer"].items():
            s, _, name = key.partition("/")
            for prog in self.programs:
                prog.set(f"opt_{s}_{name}", value)
        for pop, value in state["feedback"].items():
            self.set_feedback(pop, value)
        self.step = int(step)
        self._diverged = None  # a good state again

    def _replica_state(self) -> dict[str, np.ndarray]:
        """What every rank must hold alike: weights, parameters, optimiser state."""
        prog = self.programs[0]
        return {
            b.name: prog.get(b.name)
            for b in self.plan.buffers
            if b.role in ("weight", "param", "optimizer") and prog.has(b.name)
        }

    def _set_replica_state(self, state: dict[str, np.ndarray]) -> None:
        for name, value in state.items():
            for prog in self.programs:
                prog.set(name, value)

    def sync_replicas(self) -> bool:
        """Under MPI: make every rank's weights and optimiser state equal rank 0's (collective).

        Returns True if some rank differed. Called after compiling and after every epoch.
        """
        return self.comm.sync_replicas(self._replica_state, self._set_replica_state)

    def save(self, path) -> None:
        """Write a checkpoint atomically (temp file, fsync, rename): a crash never corrupts it.

        Under MPI only rank 0 writes (the ranks hold the same state); on the others it does
        nothing, so it may be called on every rank or on rank 0 alone.
        """
        from snncc.runtime.checkpoint import save_model

        save_model(self, path)

    # ---------------------------------------------------------------- fitting
    def fit(
        self,
        train,
        epochs: int = 1,
        validation=None,
        batch_size: int | None = None,
        seed: int = 0,
        checkpoint: str | None = None,
        progress: bool | None = None,
        on_epoch=None,
    ) -> list[dict]:
        """Train for ``epochs`` over ``train`` (a dataset with ``.batches``, or (x, y)).

        Shuffling depends only on (seed, epoch), and the epoch counter is saved in checkpoints,
        so a run resumed from ``snncc.load`` continues exactly as if never interrupted.
        ``on_epoch(record)`` is called after each epoch (for logging).

        Under MPI every rank calls ``fit`` with the same data; ``batch_size`` is global and
        each rank trains on its shard of every batch. Only rank 0 shows progress, writes the
        checkpoint and calls ``on_epoch``; a failure there stops every rank (RankFailure).
        """
        from tqdm.auto import tqdm

        from snncc.runtime.checkpoint import check_target

        self._require_training()
        check_number(epochs, "fit: epochs", minimum=0, integer=True)
        if batch_size is not None:
            check_number(batch_size, "fit: batch_size", minimum=1, integer=True)
        check_number(seed, "fit: seed", minimum=0, integer=True)
        if on_epoch is not None and not callable(on_epoch):
            raise ModelError(
                f"fit: on_epoch must be a function of the epoch's record, got {on_epoch!r}"
            )
        if checkpoint is not None:  # refused now, not after the first epoch's training
            check_target(checkpoint)
        self._check_labels(train, "fit: train", shuffled=True)
        if validation is not None:
            self._check_labels(validation, "fit: validation", shuffled=False)
        comm = self.comm
        if progress is None:  # bars only on a terminal: in a log file they flood it with \r
            progress = sys.stderr.isatty()
        progress = progress and comm.is_root
        bs = batch_size or self.batch_size * len(self.programs) * comm.size
        self.progress = getattr(self, "progress", {}) or {}
        start = int(self.progress.get("epoch", 0))
        saved = {"epoch": start} if checkpoint is not None and Path(checkpoint).is_file() else {}
        history = []
        for epoch in range(start, start + epochs):
            batches = list(_shuffled(train, bs, seed, epoch))
            bar = tqdm(batches, desc=f"epoch {epoch + 1}", disable=not progress, leave=False)
            tot_loss, tot_acc, n = 0.0, 0.0, 0
            began = time.perf_counter()
            for k, (x, y) in enumerate(bar):
                upcoming = batches[k + 1][0] if k + 1 < len(batches) else None
                try:
                    m = self._train_step(x, y, upcoming)
                except TrainingError as err:
                    raise TrainingError(f"{err} {_checkpoint_note(checkpoint, saved)}") from None
                b = len(y)
                tot_loss += m["loss"] * b
                tot_acc += m.get("accuracy", 0.0) * b
                n += b
                bar.set_postfix(loss=f"{tot_loss / n:.4f}", acc=f"{tot_acc / n:.3f}")
            took = time.perf_counter() - began
            record = {"epoch": epoch + 1, "loss": tot_loss / n}
            if self.training.rule.loss == "cross_entropy":
                record["accuracy"] = tot_acc / n
            record.update(epoch_s=took, examples_per_s=n / took if took > 0 else float("nan"))
            if validation is not None:
                val = self.evaluate(validation)
                record.update({f"val_{k}": v for k, v in val.items()})
            self.progress = {"epoch": epoch + 1, "seed": seed}
            history.append(record)
            self.sync_replicas()

            def finish_epoch(record=record) -> None:
                if checkpoint is not None:
                    self.save(checkpoint)
                    saved["epoch"] = record["epoch"]
                if on_epoch is not None:
                    on_epoch(record)

            if comm.parallel:  # rank 0 writes; a failure there stops every rank
                comm.guarded(finish_epoch, f"finishing epoch {epoch + 1}", run=comm.is_root)
            else:
                finish_epoch()
            if progress:
                tqdm.write(
                    " ".join(
                        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in record.items()
                    )
                )
        return history


def _checkpoint_note(checkpoint: str | None, saved: dict) -> str:
    """What a user has left after training stopped: only files that exist are named."""
    if checkpoint is None:
        return "No checkpoint was being written (fit(checkpoint=...) keeps one)."
    if "epoch" in saved and Path(checkpoint).is_file():
        return f"The last good checkpoint is {checkpoint} (after epoch {saved['epoch']})."
    return "No checkpoint was written: training stopped before its first epoch ended."


def _same_keys(given: object, expected: Mapping, where: str) -> None:
    if not isinstance(given, Mapping):
        raise ShapeError(f"{where}: expected a dict, got {type(given).__name__}")
    missing = [k for k in expected if k not in given]
    unknown = [k for k in given if k not in expected]
    if missing or unknown:
        raise ShapeError(
            f"{where} does not fit this model: missing {missing or 'nothing'}, unknown "
            f"{unknown or 'nothing'}; it was saved from another model"
        )


def _check_array(value: object, ref: np.ndarray, where: str) -> None:
    arr = np.asarray(value)
    if arr.shape != ref.shape or arr.dtype.kind not in "iuf":
        raise ShapeError(
            f"{where}: expected a real array of shape {ref.shape}, got {arr.dtype} of shape "
            f"{arr.shape}; it was saved from another model"
        )
    if not np.all(np.isfinite(arr)):
        raise ShapeError(f"{where} contains NaN or inf; it comes from a diverged run")


def _check_data(data: object, what: str, shuffled: bool) -> None:
    """A dataset (anything with .batches) or an (x, y) pair with as many labels as examples.

    ``shuffled``: fit draws batches by index, which needs x as a NumPy array.
    """
    usage = "give a SpikeDataset (snncc.data) or a pair (x, y) of inputs and labels"
    if hasattr(data, "batches"):
        if hasattr(data, "__len__") and len(data) == 0:
            raise ShapeError(f"{what} has no examples; {usage}")
        return
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ShapeError(f"{what}: cannot read {type(data).__name__} as data; {usage}")
    x, y = data
    if shuffled and not isinstance(x, np.ndarray):
        raise ShapeError(
            f"{what}: fit shuffles the examples by index, so x must be a NumPy array (got "
            f"{type(x).__name__}); for event lists, bin them first (snncc.data.SpikeDataset)"
        )
    try:
        n_x, n_y = len(x), len(y)
    except TypeError:
        raise ShapeError(f"{what}: x and y must be sequences of examples; {usage}") from None
    if n_x != n_y:
        raise ShapeError(f"{what}: {n_x} examples but {n_y} labels; give one label per example")
    if n_x == 0:
        raise ShapeError(f"{what} has no examples; {usage}")


def _shuffled(data, batch_size: int, seed: int, epoch: int):
    if hasattr(data, "batches"):
        yield from data.batches(batch_size, shuffle=True, seed=seed, epoch=epoch)
    else:
        x, y = data
        order = np.random.default_rng([seed, epoch]).permutation(len(y))
        for s in range(0, len(y), batch_size):
            idx = order[s : s + batch_size]
            yield x[idx], y[idx]


def _batches(data, batch_size: int):
    if hasattr(data, "batches"):
        yield from data.batches(batch_size, shuffle=False)
    else:
        x, y = data
        for s in range(0, len(y), batch_size):
            yield x[s : s + batch_size], y[s : s + batch_size]
