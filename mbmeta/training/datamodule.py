"""The LightningDataModule that turns an episode buffer into batches of K-context + M-target segments."""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from mbmeta.data.buffer import EpisodeBuffer
from mbmeta.data.segments import (
    CONTEXT_SOURCES,
    ContextSource,
    SegmentIndex,
    SegmentSampler,
    gather_segments,
    to_meta_batch,
    train_val_split,
)
from mbmeta.types import MetaBatch

# Independent random streams derived from the one seed (numpy SeedSequence entropy lists).
_SPLIT_STREAM, _VAL_STREAM, _TRAIN_STREAM = 0, 1, 2


class _SegmentBatches(Dataset):
    """Item ``j`` is one whole batch: either freshly sampled from seed ``(seed, j)`` or slice ``j`` of a fixed set.

    Seeding each batch by its global number makes the stream independent of the number of workers.
    """

    def __init__(
        self,
        buffer: EpisodeBuffer,
        sampler: SegmentSampler,
        batch_size: int,
        seed: int,
        num_batches: int,
        fixed: SegmentIndex | None = None,
    ) -> None:
        self.buffer = buffer
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.num_batches = num_batches
        self.fixed = fixed

    def __len__(self) -> int:
        return self.num_batches

    def __getitem__(self, j: int) -> MetaBatch:
        if self.fixed is not None:
            rows = slice(j * self.batch_size, (j + 1) * self.batch_size)
            index = SegmentIndex(*(a[rows] for a in self.fixed))
        else:
            rng = np.random.default_rng([self.seed, _TRAIN_STREAM, j])
            index = self.sampler.sample(rng, self.batch_size)
        return to_meta_batch(gather_segments(self.buffer, index))


class _EpochBatchNumbers(Sampler[int]):
    """Yields the global batch numbers of one epoch: ``epoch * n .. epoch * n + n - 1``.

    Lightning calls :meth:`set_epoch` before every epoch (so a resumed run continues the stream); without it,
    every new iteration moves on to the next epoch.
    """

    def __init__(self, batches_per_epoch: int) -> None:
        self.batches_per_epoch = batches_per_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self):
        start = self.epoch * self.batches_per_epoch
        self.epoch += 1
        return iter(range(start, start + self.batches_per_epoch))


def _unbatched(batch: MetaBatch) -> MetaBatch:
    """Collate function for a loader whose dataset already returns whole batches (module level: picklable)."""
    return batch


def check_data_settings(
    *,
    context_length: int = 10,
    target_length: int = 10,
    batch_size: int = 256,
    val_fraction: float = 0.1,
    split_by: str = "episode",
    samples_per_epoch: int = 25_600,
    val_samples: int = 5_120,
    num_workers: int = 0,
    pad_context: bool = False,
    min_context: int = 1,
    context_source: str = "preceding",
    seed: int = 0,
) -> None:
    """Validate :class:`MetaDataModule` settings without a buffer (what ``mbmeta train`` checks before collecting).

    Raises:
        ValueError: a value out of range, naming the setting.
    """
    for name, value in (
        ("context_length", context_length),
        ("target_length", target_length),
        ("batch_size", batch_size),
        ("samples_per_epoch", samples_per_epoch),
        ("val_samples", val_samples),
    ):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"MetaDataModule: {name} must be > 0 (an int), got {value!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"MetaDataModule: num_workers must be an int >= 0, got {num_workers!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"MetaDataModule: val_fraction must lie in [0, 1), got {val_fraction!r}")
    if split_by not in ("episode", "task"):
        raise ValueError(f"MetaDataModule: unknown split_by {split_by!r}; valid values are 'episode' and 'task'")
    if context_source not in CONTEXT_SOURCES:
        raise ValueError(f"MetaDataModule: context_source must be one of {CONTEXT_SOURCES}, got {context_source!r}")
    if pad_context and not 0 <= min_context <= context_length:
        raise ValueError(
            f"MetaDataModule: min_context must lie in [0, context_length={context_length}], got {min_context}"
        )


class MetaDataModule(pl.LightningDataModule):
    """Segments of K context and M target transitions from an episode buffer, as :class:`~mbmeta.types.MetaBatch`.

    The buffer is loaded and split at construction, so :attr:`obs_dim`, :attr:`action_dim` and :attr:`task_dim`
    are known before the model is built (LightningCLI links them into the model). Training batches are sampled
    afresh every epoch (seeded); the validation set is drawn once and stays fixed.

    Args:
        buffer_path: the ``.npz`` episode buffer written by ``EpisodeBuffer.save`` (e.g. by ``mbmeta collect``).
        context_length: K, transitions the model adapts on.
        target_length: M, transitions after the context that the loss is computed on.
        batch_size: segments per batch.
        val_fraction: fraction of episodes (or of distinct tasks, see ``split_by``) held out for validation,
            in [0, 1); 0 disables validation.
        split_by: ``"episode"`` holds out random episodes; ``"task"`` holds out every episode of randomly chosen
            task-parameter values (validation on unseen tasks).
        samples_per_epoch: training segments per epoch (rounded up to whole batches).
        val_samples: size of the fixed validation set (all validation windows if there are fewer).
        seed: seeds the split, the validation set and every training batch.
        num_workers: DataLoader worker processes (0 gathers in the main process, usually fastest here).
        pad_context: also train on windows near the episode start whose context is shorter than K
            (left-padded, with ``context_mask`` marking real transitions), as an agent sees early in an episode.
        min_context: with ``pad_context``, the fewest real context transitions a window may have (0..K).
        context_source: ``"preceding"``: the context is the K transitions just before the targets (what an agent
            adapting online has); ``"episode"``: K consecutive transitions from elsewhere in the same episode, so
            the latent can only carry what holds for the whole episode (see :mod:`mbmeta.data.segments`).
    """

    def __init__(
        self,
        buffer_path: str,
        context_length: int = 10,
        target_length: int = 10,
        batch_size: int = 256,
        val_fraction: float = 0.1,
        split_by: Literal["episode", "task"] = "episode",
        samples_per_epoch: int = 25_600,
        val_samples: int = 5_120,
        seed: int = 0,
        num_workers: int = 0,
        pad_context: bool = False,
        min_context: int = 1,
        context_source: ContextSource = "preceding",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        path = Path(buffer_path)
        if not path.is_file():
            raise FileNotFoundError(f"MetaDataModule: buffer_path {str(path)!r} does not exist (collect data first)")
        settings = {k: v for k, v in self.hparams.items() if k != "buffer_path" and not k.startswith("_")}
        self._configure(EpisodeBuffer.load(path), **settings)

    @classmethod
    def from_buffer(cls, buffer: EpisodeBuffer, **kwargs: Any) -> MetaDataModule:
        """Build from an in-memory buffer (programmatic use, tests); keyword arguments as for ``__init__``."""
        obj = cls.__new__(cls)
        pl.LightningDataModule.__init__(obj)
        defaults = {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        unknown = sorted(set(kwargs) - set(defaults))
        if unknown:
            raise TypeError(f"MetaDataModule.from_buffer: unknown arguments {unknown}; valid are {sorted(defaults)}")
        obj._configure(buffer, **{**defaults, **kwargs})
        return obj

    def _configure(
        self,
        buffer: EpisodeBuffer,
        *,
        context_length: int,
        target_length: int,
        batch_size: int,
        val_fraction: float,
        split_by: str,
        samples_per_epoch: int,
        val_samples: int,
        seed: int,
        num_workers: int,
        pad_context: bool,
        min_context: int,
        context_source: str,
    ) -> None:
        check_data_settings(**{k: v for k, v in locals().items() if k not in ("self", "buffer")})
        if pad_context and "context_mask" not in MetaBatch._fields:
            # Without a mask the zero-padded slots would look like real transitions to the model.
            raise ValueError("MetaDataModule: pad_context=True needs MetaBatch.context_mask, which this version lacks")
        if buffer.num_episodes == 0:
            raise ValueError("MetaDataModule: the buffer holds no episodes")
        self.buffer = buffer
        self.context_length = int(context_length)
        self.target_length = int(target_length)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.samples_per_epoch = int(samples_per_epoch)

        try:
            train, val = train_val_split(buffer, val_fraction, split_by, np.random.default_rng([seed, _SPLIT_STREAM]))  # type: ignore[arg-type]
        except ValueError as err:
            raise ValueError(f"MetaDataModule: {err} (buffer has {buffer.num_episodes} episodes)") from None
        self.train_episodes, self.val_episodes = train, val
        window = {"pad_context": pad_context, "min_context": min_context, "context_source": context_source}
        try:
            self.train_sampler = SegmentSampler(buffer.episode_starts, context_length, target_length, train, **window)
        except ValueError as err:
            raise ValueError(f"MetaDataModule: training split: {err}") from None
        self.val_sampler: SegmentSampler | None = None
        self.val_index: SegmentIndex | None = None
        if val.size:
            try:
                self.val_sampler = SegmentSampler(buffer.episode_starts, context_length, target_length, val, **window)
            except ValueError as err:
                raise ValueError(f"MetaDataModule: validation split: {err}") from None
            self.val_index = self.val_sampler.sample_fixed(np.random.default_rng([seed, _VAL_STREAM]), val_samples)
        self._epoch_sampler = _EpochBatchNumbers(math.ceil(self.samples_per_epoch / self.batch_size))

    # ----- what the model needs to know ----------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        """O, the observation size."""
        return self.buffer.obs_dim

    @property
    def action_dim(self) -> int:
        """A, the action size."""
        return self.buffer.action_dim

    @property
    def task_dim(self) -> int:
        """T, the number of task parameters."""
        return self.buffer.task_dim

    @property
    def task_names(self) -> tuple[str, ...]:
        """Names of the task parameters, in task-vector order."""
        return self.buffer.task_names

    def statistics(self) -> dict[str, Tensor]:
        """Normaliser statistics of the TRAINING split (see ``EpisodeBuffer.statistics``), float32 tensors."""
        return self.buffer.statistics(self.train_episodes)

    # ----- loaders -------------------------------------------------------------------------------------------
    def _loader(self, dataset: Dataset, sampler: Sampler[int] | None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=None,  # items are whole batches already
            sampler=sampler,
            collate_fn=_unbatched,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """``samples_per_epoch / batch_size`` fresh batches per epoch, each seeded by its global batch number."""
        dataset = _SegmentBatches(self.buffer, self.train_sampler, self.batch_size, self.seed, len(self._epoch_sampler))
        return self._loader(dataset, self._epoch_sampler)

    def val_dataloader(self) -> DataLoader | list:
        """The fixed validation set in batches (an empty list when ``val_fraction`` is 0)."""
        if self.val_index is None or self.val_sampler is None:
            return []
        n = self.val_index.target.shape[0]
        dataset = _SegmentBatches(
            self.buffer, self.val_sampler, self.batch_size, self.seed, math.ceil(n / self.batch_size), self.val_index
        )
        return self._loader(dataset, None)
