"""A stand-in for ``cupy.cuda.nccl`` over the emulated devices of one process (test only).

``NcclCommunicator.initAll(devices)`` gives one communicator per emulated device. Inside a
``groupStart``/``groupEnd`` pair each communicator queues its ``allReduce`` calls; at
``groupEnd`` the k-th call of every rank is executed together: the float32 buffers of the ranks
are added in rank order and the sum is written to every rank's receive buffer (the emulator's
launches are synchronous, so this happens at once, as NCCL would on the streams). Every
pointer is checked to lie inside device memory of its rank's device; a rank missing from a
group, or calls that disagree on count, type or operation, raise ``NcclError``.

**Test infrastructure: it moves bytes like NCCL, it says nothing of NCCL's speed.**
"""

from __future__ import annotations

import ctypes

import numpy as np

from tests.cudaemu import driver

NCCL_FLOAT32 = 7
NCCL_SUM = 0


class NcclError(Exception):
    """A call real NCCL would refuse or hang on."""


class _Clique:
    def __init__(self, devices: list[int]):
        self.devices = devices
        self.calls: dict[int, list[tuple]] = {rank: [] for rank in range(len(devices))}
        self.log: list[tuple[int, ...]] = []  # the counts of every executed all-reduce


_depth = 0
_open: list[_Clique] = []


class NcclCommunicator:
    def __init__(self, clique: _Clique, rank: int):
        self.clique, self.rank = clique, rank

    @staticmethod
    def initAll(devices) -> list[NcclCommunicator]:  # noqa: N802 -- cupy's name
        ordinals = [int(d) for d in devices]
        clique = _Clique(ordinals)
        return [NcclCommunicator(clique, rank) for rank in range(len(ordinals))]

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream) -> None:  # noqa: N802
        if _depth == 0:
            raise NcclError("allReduce outside a group would wait for the other devices forever")
        if datatype != NCCL_FLOAT32 or op != NCCL_SUM:
            raise NcclError(f"the stand-in sums float32 only, got type {datatype}, op {op}")
        device = self.clique.devices[self.rank]
        for what, ptr in (("send", sendbuf), ("receive", recvbuf)):
            found = driver._state.find(int(ptr))
            if found is None or found[0].device != device or found[1] + 4 * count > found[0].nbytes:
                raise NcclError(f"rank {self.rank}: the {what} buffer is not {count} floats of "
                                f"device {device}'s memory")  # fmt: skip
        self.clique.calls[self.rank].append((int(sendbuf), int(recvbuf), int(count)))
        if self.clique not in _open:
            _open.append(self.clique)


def groupStart() -> None:  # noqa: N802
    global _depth
    _depth += 1


def groupEnd() -> None:  # noqa: N802
    global _depth
    _depth -= 1
    if _depth:
        return
    while _open:
        clique = _open.pop()
        calls = list(clique.calls.values())
        if len({len(c) for c in calls}) != 1:
            raise NcclError(f"the ranks made {[len(c) for c in calls]} calls in one group")
        for k in range(len(calls[0])):
            counts = {c[k][2] for c in calls}
            if len(counts) != 1:
                raise NcclError(f"all-reduce {k}: the ranks give counts {sorted(counts)}")
            (count,) = counts
            views = [_floats(c[k][0], count) for c in calls]
            total = views[0].copy()
            for view in views[1:]:
                total += view  # rank order: the same bits on every rank
            for c in calls:
                _floats(c[k][1], count)[:] = total
            clique.log.append((count,))
        for c in calls:
            c.clear()


def _floats(address: int, count: int) -> np.ndarray:
    return np.ctypeslib.as_array((ctypes.c_float * count).from_address(address))
