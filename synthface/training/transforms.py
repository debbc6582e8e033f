"""Image transforms (albumentations) for training and for inference.

Training images leave the workers as uint8 H x W x 3 arrays and are normalised on the
device (`normalize_on_device`): a quarter of the bytes through pinned memory and PCIe,
and no float work in the workers. Inference uses `eval_transform`, which does the same
arithmetic on the CPU and returns a float tensor, so both see identical pixels.
"""

from __future__ import annotations

import functools
import random

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from synthface.training.recipe import AugmentSection

# ImageNet statistics: the backbone was (or may be) pretrained with them.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def eval_transform(image_size: int) -> A.Compose:
    """Resize to image_size x image_size, normalise with MEAN/STD, return a 3 x H x W float tensor."""
    return A.Compose([
        A.Resize(image_size, image_size, interpolation=cv2.INTER_AREA),
        A.Normalize(mean=MEAN, std=STD, max_pixel_value=255.0),
        ToTensorV2(),
    ])


def train_transform(augment: AugmentSection, image_size: int) -> A.Compose:
    """Resize plus the recipe's augmentations; output stays uint8 H x W x 3 (see module doc)."""
    affine, color = augment.affine, augment.color
    return A.Compose([
        A.Resize(image_size, image_size, interpolation=cv2.INTER_AREA),
        A.HorizontalFlip(p=augment.hflip),
        A.Affine(
            scale=affine.scale,
            translate_percent=(-affine.translate, affine.translate),
            rotate=(-affine.rotate, affine.rotate),
            border_mode=cv2.BORDER_REFLECT_101,
            p=affine.p,
        ),
        A.ColorJitter(
            brightness=color.brightness,
            contrast=color.contrast,
            saturation=color.saturation,
            hue=color.hue,
            p=color.p,
        ),
    ])


def reseed(transform: A.Compose, seed: int) -> None:
    """Make the pipeline's random draws a function of `seed` alone.

    One generator pair, shared by every transform in turn, is cheap to make per sample, and
    seeding per sample makes augmentation depend on (recipe seed, epoch, index) only: the
    same on any number of workers or GPUs, and identical after `--resume`.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


@functools.lru_cache(maxsize=8)
def _pixel_stats(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """MEAN and STD in 0..255 units as 1 x 3 x 1 x 1 tensors on `device`, made once.

    Building them per step would copy from pageable host memory, and such a copy waits for
    the GPU to finish all queued work: the loader's latency would no longer overlap compute.
    """
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1) * 255.0
    return mean, std


def normalize_on_device(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 B x H x W x 3 (as collated from the workers) -> normalised float B x 3 x H x W on `device`.

    Permuting NHWC gives a channels_last-strided NCHW view for free; the float conversion
    and the normalisation keep those strides.
    """
    images = images.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    mean, std = _pixel_stats(device)
    images = (images - mean) / std
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return images.contiguous(memory_format=memory_format)
