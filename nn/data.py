"""Batches of data, as ``torch.utils.data``: ``DataLoader((X, y), batch_size=32, shuffle=True,
seed=0)`` for arrays, or ``DataLoader(dataset, ...)`` for a PyTorch-style ``Dataset``.

>>> import numpy as np
>>> from autodiff import nn
>>> class Squares(nn.Dataset):
...     def __len__(self):
...         return 5
...     def __getitem__(self, i):
...         return np.array([i, i * i], dtype=float), i % 2
>>> [yb.tolist() for xb, yb in nn.DataLoader(Squares(), batch_size=2)]
[[0, 1], [0, 1], [0]]

How a batch is made:

- A tuple of arrays ``(X, y, ...)`` (made a ``TensorDataset``), a ``TensorDataset``, a NumPy
  array, or a ``Subset`` of one of these: the batch is ``dataset[index_array]``, one fancy
  indexing per array (fast; the batch of a ``TensorDataset`` is a tuple of arrays).
- Any other dataset (a ``Dataset`` subclass, any object with ``__getitem__`` and ``__len__``,
  a list of samples): indexed one sample at a time (``dataset[i]`` with a Python ``int``),
  or through ``dataset.__getitems__(indices)`` where defined, and the samples joined by
  ``collate_fn``, by default ``default_collate`` with ``torch.utils.data.default_collate``'s
  rules: NumPy arrays and NumPy scalars stacked along a new batch axis 0, Python floats as a
  float64 array, ints as an int64 array, bools as a bool array; dicts, namedtuples and
  sequences collated per key / field / position (a tuple sample gives a list, as torch's);
  strings and bytes kept as a list.
- An ``IterableDataset``: its samples in its order, ``batch_size`` at a time, collated.

``batch_size=None`` yields the samples unbatched, through ``collate_fn`` when given, else
``default_convert`` (torch's: NumPy scalars as 0-d arrays, tuples as lists);
``sampler=`` (an iterable of indices) and ``batch_sampler=`` (an iterable of index lists)
replace the order, as in torch. Each pass over the loader is one epoch; with ``shuffle`` every
epoch draws a new order (``rng.permutation``) from the loader's own generator: ``seed=`` or
``generator=`` (a NumPy ``Generator`` or an int), so a run is repeatable. ``num_workers``,
``pin_memory``, ``timeout``, ``worker_init_fn``, ``prefetch_factor`` and the other process
options are accepted and ignored: samples are loaded in the calling process.
"""
import bisect
import collections.abc
import copy
import itertools
import math
import warnings

import numpy as np

from autodiff.boxes import Box

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "random_split", "default_collate", "default_convert", "Sampler", "SequentialSampler",
           "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
           "DataLoader"]


def _generator(generator):
    """A NumPy Generator from ``generator`` (a Generator, an int seed, or None: the
    ``nn.init`` generator, as torch's default generator)."""
    if generator is None:
        from .init import default_generator
        return default_generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"generator must be a numpy.random.Generator or an int seed, got "
                    f"{type(generator).__name__} (torch.Generator → np.random.default_rng(seed))")


# ----- Datasets -----


class Dataset:
    """The base of map-style datasets (``torch.utils.data.Dataset``): subclasses define
    ``__getitem__(self, index)`` returning one sample and ``__len__``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset of samples produced by ``__iter__`` (``torch.utils.data.IterableDataset``);
    the loader batches them in their order."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        raise TypeError("IterableDataset does not support concatenation with +")


class TensorDataset(Dataset):
    """Arrays of equal length, indexed together: ``ds[i]`` (or ``ds[index_array]``) is the
    tuple of the arrays' rows."""

    def __init__(self, *arrays):
        n = {len(a) for a in arrays}
        if len(n) != 1:
            raise ValueError(f"TensorDataset arrays differ in length: {sorted(n)}")
        self.arrays = tuple(np.asarray(a) for a in arrays)

    @property
    def tensors(self):              # torch's name
        return self.arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, idx):
        return tuple(a[idx] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        if isinstance(idx, np.ndarray) and idx.ndim > 0:
            return self.dataset[np.asarray(self.indices)[idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__([self.indices[i] for i in indices])
        return [self.dataset[self.indices[i]] for i in indices]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of ``datasets`` one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        idx = int(idx)
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        if idx >= len(self):
            raise IndexError(f"index {idx} out of range for a ConcatDataset of {len(self)}")
        k = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[k][idx - (self.cumulative_sizes[k - 1] if k else 0)]


def random_split(dataset, lengths, generator=None):
    """``dataset`` split into non-overlapping ``Subset``s of the given ``lengths`` (ints
    summing to ``len(dataset)``, or fractions summing to 1, the remainder given one by one
    to the first subsets, as torch's). ``generator``: a NumPy Generator or an int seed;
    by default ``nn.init``'s generator (``nn.init.manual_seed``)."""
    n = len(dataset)
    lengths = list(lengths)
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1:
        counts = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(int(math.floor(n * frac)))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.")
        lengths = counts
    if any(int(c) != c or c < 0 for c in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions, "
                         f"got {lengths}")
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = _generator(generator).permutation(n).tolist()
    out, start = [], 0
    for c in lengths:
        out.append(Subset(dataset, order[start:start + int(c)]))
        start += int(c)
    return out


# ----- Collation -----


def _strings(a):
    return a.dtype.kind in "SUO" or a.dtype.kind == "V"


def _same_container(like, parts):
    """``parts`` (a dict or a list) in ``like``'s container type, as torch rebuilds them: a
    mutable one is copied and filled in, another built from ``parts``; where neither
    works, ``parts`` itself."""
    try:
        if isinstance(like, collections.abc.MutableMapping):
            clone = copy.copy(like)
            clone.update(parts)
            return clone
        if isinstance(like, collections.abc.MutableSequence):
            clone = copy.copy(like)
            for i, p in enumerate(parts):
                clone[i] = p
            return clone
        return type(like)(parts)
    except TypeError:
        return parts


def default_collate(batch):
    """A list of samples as one batch, by ``torch.utils.data.default_collate``'s rules (see
    this module's docstring); NumPy arrays where torch makes tensors."""
    elem = batch[0]
    if isinstance(elem, Box):                    # tracked values: stacked as values
        return np.stack(list(batch))
    if isinstance(elem, np.ndarray):
        if _strings(elem):
            raise TypeError(f"default_collate: batch must contain arrays, numbers, dicts or "
                            f"lists; found an array of dtype {elem.dtype}")
        return np.stack([np.asarray(b) for b in batch])
    if isinstance(elem, (np.bool_, np.number, np.object_)):
        return np.stack([np.asarray(b) for b in batch])
    if isinstance(elem, float):
        return np.asarray(batch, dtype=np.float64)
    if isinstance(elem, int):               # bools too; mixed with floats: float64
        a = np.asarray(batch)
        return a.astype(np.int64) if a.dtype.kind in "iu" else a
    if isinstance(elem, (str, bytes)):
        return batch                         # as given (a tuple inside a collated sequence)
    if isinstance(elem, collections.abc.Mapping):
        parts = {key: default_collate([d[key] for d in batch]) for key in elem}
        return _same_container(elem, parts)
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):          # namedtuple
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        parts = [default_collate(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return parts                     # torch gives a list for tuple samples
        return _same_container(elem, parts)
    raise TypeError(f"default_collate: batch must contain arrays, numbers, dicts or lists; "
                    f"found {type(elem)}")


def default_convert(data):
    """An unbatched sample as torch's ``default_convert`` makes it (``batch_size=None``):
    NumPy scalars as 0-d arrays, tuples as lists, the rest as it is (recursively)."""
    if isinstance(data, np.generic) and not isinstance(data, (str, bytes)):
        return np.asarray(data)
    if isinstance(data, collections.abc.Mapping):
        parts = {key: default_convert(data[key]) for key in data}
        return _same_container(data, parts)
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        parts = [default_convert(d) for d in data]
        return _same_container(data, parts)
    return data


# ----- Samplers -----


class Sampler:
    """The base of samplers: ``__iter__`` yields dataset indices (or lists of them)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of ``data_source``'s indices (or ``num_samples`` drawn with
    ``replacement``); a new one each pass, from ``generator`` (NumPy Generator or int seed,
    by default ``nn.init``'s generator)."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={self.num_samples}")
        self._rng = None if generator is None else _generator(generator)

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        rng = self._rng if self._rng is not None else _generator(None)
        n, k = len(self.data_source), self.num_samples
        if self.replacement:
            return iter(rng.integers(0, n, size=k).tolist())
        reps = [rng.permutation(n) for _ in range(-(-k // n))]
        return iter(np.concatenate(reps)[:k].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, a new one each pass."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator
        self._rng = None if generator is None else _generator(generator)

    def __iter__(self):
        rng = self._rng if self._rng is not None else _generator(None)
        return iter([self.indices[i] for i in rng.permutation(len(self.indices))])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        w = np.asarray(getattr(weights, "value", weights), dtype=np.float64)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{w.shape}")
        if not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool) \
                or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        self.weights, self.num_samples, self.replacement = w, int(num_samples), replacement
        self.generator = generator
        self._rng = None if generator is None else _generator(generator)

    def __iter__(self):
        rng = self._rng if self._rng is not None else _generator(None)
        p = self.weights / self.weights.sum()
        return iter(rng.choice(len(p), size=self.num_samples, replace=self.replacement,
                               p=p).tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (the last one shorter unless
    ``drop_last``)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        self.sampler, self.batch_size, self.drop_last = sampler, int(batch_size), drop_last

    def __iter__(self):
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


# ----- The loader -----


def _batched(dataset):
    """``fetch(index_array)`` giving the batch by one fancy indexing, for the datasets where
    that is known to equal collating the samples; else None."""
    if isinstance(dataset, np.ndarray):
        return dataset.__getitem__
    if isinstance(dataset, TensorDataset) and \
            type(dataset).__getitem__ is TensorDataset.__getitem__:
        return dataset.__getitem__
    if isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__ \
            and type(dataset).__getitems__ is Subset.__getitems__:
        inner = _batched(dataset.dataset)
        if inner is not None:
            indices = np.asarray(dataset.indices, dtype=np.intp)
            return lambda idx: inner(indices[idx])
    return None


class DataLoader:
    """Batches of ``dataset`` (``torch.utils.data.DataLoader``; see this module's docstring).

    ``dataset``: a tuple of equal-length arrays, a ``TensorDataset``, an array, or any
    map-style dataset (``__getitem__`` and ``__len__``: a ``Dataset`` subclass, a list of
    samples) or ``IterableDataset``. ``seed``/``generator``: the shuffling generator."""

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True, seed=None):
        if isinstance(dataset, tuple):
            dataset = TensorDataset(*dataset)
        self.dataset = dataset
        self.num_workers, self.pin_memory, self.timeout = num_workers, pin_memory, timeout
        self.worker_init_fn, self.prefetch_factor = worker_init_fn, prefetch_factor
        self.persistent_workers = persistent_workers
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            if not isinstance(batch_sampler, collections.abc.Iterable):
                raise TypeError(f"batch_sampler must be an iterable of index lists, got "
                                f"{type(batch_sampler).__name__}")
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is "
                                 "mutually exclusive with drop_last")
        else:
            if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size <= 0:
                raise ValueError(f"batch_size should be a positive integer value, but got "
                                 f"batch_size={batch_size}")
            batch_size = int(batch_size)
        if sampler is not None and not isinstance(sampler, collections.abc.Iterable):
            raise TypeError(f"sampler must be an iterable of indices, got "
                            f"{type(sampler).__name__}")
        if seed is not None and generator is not None:
            raise ValueError("give seed= or generator=, not both")
        self.batch_size, self.drop_last = batch_size, bool(drop_last)
        self.shuffle = bool(shuffle)
        self.sampler, self.batch_sampler = sampler, batch_sampler
        self.collate_fn = collate_fn
        self.generator = generator
        self.rng = generator if isinstance(generator, np.random.Generator) else \
            np.random.default_rng(seed if generator is None else _seed(generator))
        self._fetch = None if collate_fn is not None or self._iterable else _batched(dataset)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or self.batch_size is not None

    def _indices(self):
        if self.sampler is not None:
            return self.sampler
        n = len(self.dataset)
        return self.rng.permutation(n) if self.shuffle else range(n)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.dataset) if self.sampler is None or self._iterable else len(self.sampler)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _sample(self, i):
        return self.dataset[int(i) if isinstance(i, (np.integer, int)) else i]

    def _samples(self, idx):
        getitems = getattr(self.dataset, "__getitems__", None)
        if callable(getitems):
            return getitems([int(i) if isinstance(i, np.integer) else i for i in idx])
        return [self._sample(i) for i in idx]

    def _collate(self, samples):
        return (self.collate_fn or default_collate)(samples)

    def __iter__(self):
        if self._iterable:
            yield from self._iter_iterable()
            return
        if not self._auto_collation:
            convert = self.collate_fn or default_convert
            for i in self._indices():
                yield convert(self._sample(i))
            return
        if self.batch_sampler is not None:
            batches = iter(self.batch_sampler)
        else:
            order = self._indices()
            if isinstance(order, (range, np.ndarray)):
                n, bs = len(order), self.batch_size
                stop = n - n % bs if self.drop_last else n
                batches = (order[s:s + bs] for s in range(0, stop, bs))
            else:
                batches = iter(BatchSampler(order, self.batch_size, self.drop_last))
        for idx in batches:
            if self._fetch is not None:
                if isinstance(idx, range):
                    idx = np.arange(idx.start, idx.stop, dtype=np.intp)
                yield self._fetch(np.asarray(idx, dtype=np.intp))
            else:
                yield self._collate(self._samples(idx))

    def _iter_iterable(self):
        it = iter(self.dataset)
        if self.batch_size is None:
            convert = self.collate_fn or default_convert
            for s in it:
                yield convert(s)
            return
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield self._collate(batch)


def _seed(generator):
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return int(generator)
    raise TypeError(f"generator must be a numpy.random.Generator or an int seed, got "
                    f"{type(generator).__name__} (torch.Generator → np.random.default_rng(seed))")
