"""Batches of arrays: ``DataLoader((X, y), batch_size=32, shuffle=True, seed=0)``.

Each pass over the loader is one epoch; with ``shuffle`` every epoch draws a new order from
the loader's own seeded generator, so a run is repeatable."""
import numpy as np

__all__ = ["TensorDataset", "DataLoader"]


class TensorDataset:
    """Arrays of equal length, indexed together."""

    def __init__(self, *arrays):
        n = {len(a) for a in arrays}
        if len(n) != 1:
            raise ValueError(f"TensorDataset arrays differ in length: {sorted(n)}")
        self.arrays = tuple(np.asarray(a) for a in arrays)

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, idx):
        return tuple(a[idx] for a in self.arrays)


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None, drop_last=False):
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        self.dataset, self.batch_size = dataset, int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            yield self.dataset[order[start:start + self.batch_size]]
