"""3D training patches with foreground oversampling (MONAI ``RandCropByPosNegLabeld``).

nnU-Net (Isensee et al., 2021), which papers 002 and 003 follow for their 3D parts, trains on
random patches and forces a share of them to contain foreground. Paper 002 App. D
(``/work/shared/papers/002_*.txt`` l.323, l.325): BraTS-METS "a random patch of size
[80 x 96 x 80] with a foreground oversample ratio of 0.33"; KiTS "8 random patches per sample,
with a foreground oversample ratio of 0.45 and a fixed size of [96 x 96 x 80]". Paper 003
(l.746-749) uses "the 3D nnUNet" without a patch size: nnU-Net plans one per dataset; the study
config records a 128-cubed placeholder (``crop: 128``) and nnU-Net's default oversampling 0.33.

Each patch is drawn by MONAI ``RandCropByPosNegLabeld(pos=r, neg=1 - r)``: with probability
``r`` its centre is a uniformly drawn foreground voxel (label > 0), otherwise a uniformly drawn
background voxel (label 0); the centre is moved inwards where the patch would leave the volume.
Volumes smaller than the patch are first zero-padded to it (``SpatialPadd``, centred), as
nnU-Net pads. nnU-Net itself forces foreground in the last ``round(r * batch)`` samples of
each batch (batch 2, r = 0.33: exactly one of every two patches); MONAI draws the choice per
patch, so ``r`` is the expected share (docs/3d.md). The measured share is tested in
tests/three_d/test_patches.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PatchProtocol:
    """The patch protocol of one dataset (module docstring).

    Attributes:
        patch_size: patch side per axis, in the prepared array's axis order.
        fg_rate: expected share of patches centred on foreground, in [0, 1].
        samples_per_volume: patches drawn per loaded volume (KiTS: 8).
        source: where the numbers come from.
    """

    patch_size: tuple[int, int, int]
    fg_rate: float
    samples_per_volume: int
    source: str


_P003 = (
    "paper 003 l.746 (3D nnU-Net): nnU-Net's default oversampling 0.33; 128^3 placeholder "
    "patch (nnU-Net plans one per dataset; config/studies/paper003_3d.yaml crop: 128)"
)
PATCH_PROTOCOLS: dict[str, PatchProtocol] = {
    "brats_mets": PatchProtocol((80, 96, 80), 0.33, 1, "paper 002 App. D l.323"),
    "kits23": PatchProtocol((96, 96, 80), 0.45, 8, "paper 002 App. D l.325"),
    "msd_pancreas": PatchProtocol((128, 128, 128), 0.33, 1, _P003),
    "msd_liver": PatchProtocol((128, 128, 128), 0.33, 1, _P003),
    "amos22": PatchProtocol((128, 128, 128), 0.33, 1, _P003),
}
"""Patch protocols per registry id (config/datasets.yaml) of the 3D studies."""


def patch_protocol(registry_id: str) -> PatchProtocol:
    """The protocol of ``registry_id``.

    Raises:
        KeyError: naming the known ids, for an unknown one.
    """
    try:
        return PATCH_PROTOCOLS[registry_id]
    except KeyError:
        raise KeyError(
            f"no 3D patch protocol for dataset {registry_id!r}; known: {sorted(PATCH_PROTOCOLS)}"
        ) from None


def _check(patch_size: Sequence[int], fg_rate: float, num_samples: int) -> tuple[int, ...]:
    size = tuple(patch_size)
    if len(size) not in (2, 3) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size
    ):
        raise ValueError(f"patch_size must be 2 or 3 positive ints, got {patch_size!r}")
    if isinstance(fg_rate, bool) or not isinstance(fg_rate, int | float) or not 0 <= fg_rate <= 1:
        raise ValueError(f"fg_rate must be a number in [0, 1], got {fg_rate!r}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    return size


class PatchSampler:
    """Draws patches of one volume: ``SpatialPadd`` to the patch, then
    ``RandCropByPosNegLabeld(pos=fg_rate, neg=1 - fg_rate)`` (module docstring).

    Args:
        patch_size: patch side per spatial axis.
        fg_rate: expected share of foreground-centred patches (paper 002: 0.33 BraTS-METS,
            0.45 KiTS).
        num_samples: patches per call (default 1; paper 002 KiTS: 8).
        seed: seed of the sampler's random state (default 0), so a run is reproducible.

    Raises:
        ValueError: bad ``patch_size``, ``fg_rate`` or ``num_samples``.
    """

    def __init__(
        self,
        patch_size: Sequence[int],
        fg_rate: float,
        num_samples: int = 1,
        *,
        seed: int = 0,
    ) -> None:
        from monai.transforms import Compose, RandCropByPosNegLabeld, SpatialPadd

        self.patch_size = _check(patch_size, fg_rate, num_samples)
        self.fg_rate = float(fg_rate)
        self.num_samples = num_samples
        keys = ["image", "label"]
        self._crop = RandCropByPosNegLabeld(
            keys=keys,
            label_key="label",
            spatial_size=self.patch_size,
            pos=self.fg_rate,
            neg=1.0 - self.fg_rate,
            num_samples=num_samples,
            allow_smaller=False,
        )
        self._pipeline = Compose(
            [SpatialPadd(keys=keys, spatial_size=self.patch_size, mode="constant"), self._crop]
        )
        # after Compose: MONAI's Compose.__init__ reseeds every random transform it holds from
        # its own unseeded state (get_seed() is None without monai.utils.set_determinism), which
        # made two samplers of one seed draw different patches (tests/three_d/test_patches.py)
        self._crop.set_random_state(seed=seed)

    @classmethod
    def for_dataset(cls, registry_id: str, *, seed: int = 0) -> PatchSampler:
        """The sampler of :data:`PATCH_PROTOCOLS` ``[registry_id]``."""
        p = patch_protocol(registry_id)
        return cls(p.patch_size, p.fg_rate, p.samples_per_volume, seed=seed)

    def state_dict(self) -> dict[str, Any]:
        """The random states (numpy ``RandomState`` tuples of the transform and of the array
        cropper inside it, which draws the centres), for checkpoints / resume."""
        return {"rng": self._crop.R.get_state(), "cropper_rng": self._crop.cropper.R.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._crop.R.set_state(state["rng"])
        self._crop.cropper.R.set_state(state["cropper_rng"])

    def __call__(self, image: np.ndarray, label: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``num_samples`` patches of one volume.

        Args:
            image: ``[C, *spatial]`` float.
            label: ``[*spatial]`` class indices (0 = background).

        Returns:
            list of ``(image [C, *patch_size] float32, label [*patch_size] uint8)``.

        Raises:
            ValueError: if the shapes do not fit ``patch_size``'s number of axes.
        """
        if image.ndim != len(self.patch_size) + 1 or label.shape != image.shape[1:]:
            raise ValueError(
                f"image must be [C, *spatial] and label [*spatial] with {len(self.patch_size)} "
                f"spatial axes, got {image.shape} and {label.shape}"
            )
        # int64, not uint8: MONAI 1.6 map_binary_to_indices takes ``~torch.any(label)``, and
        # torch.any keeps uint8 for uint8 input, so ``~`` flips bits and every voxel (foreground
        # included) became a "background" centre (caught by tests/three_d/test_patches.py).
        lab = np.asarray(label).astype(np.int64)[None]
        out = self._pipeline({"image": np.asarray(image, dtype=np.float32), "label": lab})
        return [
            (
                np.asarray(d["image"], dtype=np.float32),
                np.asarray(d["label"])[0].astype(np.uint8),
            )
            for d in out
        ]


# ---------------------------------------------------------------------------------------------
# The engine's 3D data path (segbench.train.run.TrainingRun with 5D prepared arrays).

DEFAULT_FG_RATE = 0.33
"""Foreground rate of a 3D dataset without a protocol: nnU-Net's default oversampling."""


def resolve_protocol(
    given: dict[str, Any] | None,
    registry_id: str | None,
    crop: int | None,
    dataset: str,
) -> PatchProtocol:
    """The patch protocol a 3D run trains with, each field from the first that has it:
    the run's ``training.patch`` (the study's ``datasets.<key>.patch`` / ``fg_rate`` /
    ``patches_per_volume``, :func:`segbench.config.run_spec`), :data:`PATCH_PROTOCOLS` of the
    dataset's registry id, then a cube of side ``training.crop`` with
    :data:`DEFAULT_FG_RATE` and one patch per volume.

    Raises:
        ValueError: naming the dataset, when no patch size is known (no ``patch``, no
            protocol, ``training.crop`` null), or a bad value.
    """
    given = dict(given or {})
    base = PATCH_PROTOCOLS.get(registry_id or "")
    size = given.get("size") or (base.patch_size if base else None)
    if size is None and crop is not None:
        size = (int(crop),) * 3
    if size is None:
        raise ValueError(
            f"dataset {dataset!r} is 3D but has no patch size: set datasets.{dataset}.patch "
            "([x, y, z]) or training.crop (a cube side)"
        )
    fg = given.get("fg_rate", base.fg_rate if base else DEFAULT_FG_RATE)
    k = given.get("samples_per_volume", base.samples_per_volume if base else 1)
    source = "study config" if given else (base.source if base else "training.crop cube")
    _check(tuple(int(s) for s in size), fg, k)
    if len(tuple(size)) != 3:
        raise ValueError(f"dataset {dataset!r}: patch must be 3 ints [x, y, z], got {size!r}")
    return PatchProtocol(tuple(int(s) for s in size), float(fg), int(k), source)  # type: ignore[arg-type]


def _state_to_torch(state: tuple[Any, ...]) -> list[Any]:
    """A numpy ``RandomState`` state as ``torch.load(weights_only=True)``-safe values."""
    import torch

    name, keys, pos, has_gauss, cached = state
    return [str(name), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos),
            int(has_gauss), float(cached)]  # fmt: skip


def _state_from_torch(state: Sequence[Any]) -> tuple[Any, ...]:
    name, keys, pos, has_gauss, cached = state
    return (
        name,
        np.asarray(keys.numpy(), dtype=np.uint32),
        int(pos),
        int(has_gauss),
        float(cached),
    )


class VolumeBatches:
    """Training batches of a 3D run: ``batch_size`` patches drawn by a :class:`PatchSampler`
    from ``ceil(batch_size / samples_per_volume)`` volumes of the epoch's order, then flips.

    The volumes are held on the host, each cropped to its unpadded extent (the sidecar's
    ``recipe.volumes.<id>.shape``), so no patch centre falls in the zero padding.

    Args:
        images: per training volume ``[C, *shape]`` float32.
        labels: per training volume ``[*shape]`` class indices.
        protocol: patch size, foreground rate and patches per volume.
        seed: the run seed (the sampler's numpy random state).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        protocol: PatchProtocol,
        seed: int,
    ) -> None:
        self.images, self.labels = list(images), list(labels)
        self.protocol = protocol
        self.sampler = PatchSampler(
            protocol.patch_size, protocol.fg_rate, protocol.samples_per_volume, seed=seed
        )

    def volumes_per_step(self, batch_size: int) -> int:
        """Volumes read per step of ``batch_size`` patches."""
        return math.ceil(batch_size / self.protocol.samples_per_volume)

    def batch(
        self, volumes: Sequence[int], batch_size: int, hflip: bool, vflip: bool, gen: Any
    ) -> tuple[Any, Any]:
        """``(x [B, C, *patch] float32, y [B, *patch] int64)`` CPU tensors: the patches of
        ``volumes`` (training-volume indices), the first ``batch_size`` of them, then per
        sample a flip of the first spatial axis (``hflip``: x, left-right in RAS+) and of the
        second (``vflip``), each coin 0.5 from the run's generator ``gen`` as in 2D."""
        import torch

        xs, ys = [], []
        for v in volumes:
            for img, lab in self.sampler(self.images[v], self.labels[v]):
                xs.append(img)
                ys.append(lab)
        x = torch.from_numpy(np.stack(xs[:batch_size]))
        y = torch.from_numpy(np.stack(ys[:batch_size]).astype(np.int64))
        b = x.shape[0]
        for on, dim in ((hflip, 2), (vflip, 3)):
            if not on:
                continue
            flip = torch.rand(b, generator=gen) < 0.5
            if bool(flip.any()):
                x = torch.where(flip[:, None, None, None, None], x.flip(dim), x)
                y = torch.where(flip[:, None, None, None], y.flip(dim - 1), y)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        """The sampler's random states, ``torch.load(weights_only=True)``-safe."""
        return {k: _state_to_torch(v) for k, v in self.sampler.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict({k: _state_from_torch(v) for k, v in state.items()})
