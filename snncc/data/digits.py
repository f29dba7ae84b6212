"""The embedded default dataset: spiking sequential 8x8 digits (offline, no files needed).

Source: scikit-learn's bundled handwritten digits (``sklearn.datasets.load_digits``: 1797
grey-scale 8x8 images, pixel values 0..16, 10 classes, roughly balanced). The train/test split
is a stratified 80/20 split (1437/360) with ``random_state=seed``.

Encoding ("row and column scan", 64 inputs, 40 steps by default):

* Every pixel value ``v`` is coded by a thermometer of 4 input neurons with thresholds
  ``LEVELS = (1, 5, 9, 13)``: neuron ``l`` is active iff ``v >= LEVELS[l]`` (a blank pixel
  activates none, a saturated one all four).
* The image is scanned in 8 slots of ``hold`` steps (default 4). During slot ``k`` two
  populations are active at once:

  - inputs ``0..31`` show **row k**: input ``4*c + l`` codes pixel ``(k, c)``, level ``l``;
  - inputs ``32..63`` show **column k**: input ``32 + 4*r + l`` codes pixel ``(r, k)``.

  An active input neuron spikes on every step of its slot (0/1 per step).
* A silent tail of ``tail`` steps (default 8) follows, during which the network only has its
  own memory and the readout integrates.

So after the 32 scan steps every pixel has been shown twice, once from each direction, and
the two populations together present a "cross" moving diagonally over the image, which
needs much less memory than a plain row-by-row scan. Measured with a throwaway PyTorch BPTT
script (256 recurrent ALIF neurons, tau_m = tau_out = 20 steps, tau_a 2000, beta 0.0174,
v_th 0.6, no refractory period, per-timestep softmax cross-entropy, prediction = argmax of
summed softmax, Adam 1e-3, batch 32, 20 epochs, 1-3 min on 2 CPU cores), final test accuracy:
93.3-95.0 % over 3 seeds (128 ALIF: 93.1 %, 256 LIF: 95.3 %, 256 ALIF without recurrent
weights, where e-prop equals BPTT: 96.1 %), versus 83-86 % for a row-by-row thermometer scan
with the same script. Logistic regression on the flattened spike tensor: 97.2 %.
"""

from __future__ import annotations

import numpy as np

from .core import DatasetError, SpikeDataset

__all__ = ["LEVELS", "N_INPUTS", "encode_digits", "load_digits", "split_indices"]

#: Thermometer thresholds on the 0..16 pixel scale.
LEVELS: tuple[int, ...] = (1, 5, 9, 13)
#: Number of input channels: 2 populations x 8 pixels x len(LEVELS).
N_INPUTS = 2 * 8 * len(LEVELS)
N_CLASSES = 10


def encode_digits(images: np.ndarray, hold: int = 4, tail: int = 8) -> np.ndarray:
    """Encode ``(n, 8, 8)`` images with values 0..16 as ``uint8`` spikes
    ``(n, 8 * hold + tail, 64)`` (see the module docstring)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (8, 8):
        raise DatasetError(f"images must have shape (n, 8, 8), got {images.shape}")
    if hold < 1 or tail < 0:
        raise DatasetError(f"need hold >= 1 and tail >= 0, got hold={hold}, tail={tail}")
    n = images.shape[0]
    n_lv = len(LEVELS)
    therm = (images[..., None] >= np.asarray(LEVELS)).astype(np.uint8)  # (n, row, col, level)
    x = np.zeros((n, 8 * hold + tail, N_INPUTS), dtype=np.uint8)
    half = 8 * n_lv
    for k in range(8):
        steps = slice(k * hold, (k + 1) * hold)
        x[:, steps, :half] = therm[:, k, :, :].reshape(n, 1, half)  # row k
        x[:, steps, half:] = therm[:, :, k, :].reshape(n, 1, half)  # column k
    return x


def split_indices(seed: int = 0, test_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``sklearn.datasets.load_digits()`` of the (train, test) examples:
    a stratified split with ``random_state=seed``."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    target = sk_load_digits().target
    idx = np.arange(len(target))
    train, test = train_test_split(idx, test_size=test_fraction, stratify=target, random_state=seed)
    return np.sort(train), np.sort(test)


def load_digits(split: str = "train", seed: int = 0, hold: int = 4, tail: int = 8) -> SpikeDataset:
    """Spiking sequential 8x8 digits: 64 inputs, 10 classes, ``8 * hold + tail`` steps
    (40 by default), splits "train" (1437) / "test" (360). Deterministic in ``seed``."""
    from sklearn.datasets import load_digits as sk_load_digits

    if split not in ("train", "test"):
        raise DatasetError(
            f"digits split must be 'train' or 'test', got {split!r} "
            "(use SpikeDataset.split() for a validation set)"
        )
    bunch = sk_load_digits()
    train, test = split_indices(seed)
    idx = train if split == "train" else test
    x = encode_digits(bunch.images[idx], hold=hold, tail=tail)
    return SpikeDataset(x, bunch.target[idx], n_classes=N_CLASSES, name=f"digits/{split}", dt=1.0)
