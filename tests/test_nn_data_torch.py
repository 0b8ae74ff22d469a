"""nn.DataLoader and the datasets against torch.utils.data: a PyTorch-style per-sample
Dataset gives torch's batches (default_collate's rules: arrays and numbers stacked along a new
axis 0, tuples/lists/dicts/namedtuples collated per position or key, strings kept as lists),
with collate_fn=, batch_size=None, drop_last, sampler=, batch_sampler=; the same Python
dataset object is given to both loaders (torch makes tensors of the NumPy samples)."""
import collections

import numpy as np
import pytest

from autodiff import nn

torch = pytest.importorskip("torch")
tud = torch.utils.data


def plain(b):
    """torch's batch with tensors as NumPy arrays (structure kept)."""
    if isinstance(b, torch.Tensor):
        return b.numpy()
    if isinstance(b, dict):
        return {k: plain(v) for k, v in b.items()}
    if isinstance(b, tuple) and hasattr(b, "_fields"):
        return type(b)(*(plain(v) for v in b))
    if isinstance(b, (list, tuple)):
        return type(b)(plain(v) for v in b)
    return b


def same(ours, theirs):
    theirs = plain(theirs)
    assert type(ours) is type(theirs), (type(ours), type(theirs))
    if isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs)
        for k in ours:
            same(ours[k], theirs[k])
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            same(a, b)
    else:
        assert ours == theirs


def same_batches(ours, theirs):
    a, b = list(ours), list(theirs)
    assert len(a) == len(b) == len(ours) == len(theirs)
    for x, y in zip(a, b):
        same(x, y)


class SumDS:                       # no base class at all, as torch accepts
    X = np.arange(14.0).reshape(7, 2)

    def __len__(self):
        return 7

    def __getitem__(self, i):
        x = self.X[i]
        return x, x.sum()


class MyDS(nn.Dataset):
    def __init__(self, n=5):
        self.X = np.arange(2.0 * n).reshape(n, 2)
        self.y = np.arange(n)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.X[i] * 1.0, int(self.y[i])


Point = collections.namedtuple("Point", "x label")


class Mixed(MyDS):
    """Every kind of leaf default_collate knows."""

    def __getitem__(self, i):
        return {"x": self.X[i].astype(np.float32), "y": int(self.y[i]), "w": float(i) / 3,
                "flag": bool(i % 2), "name": f"s{i}", "raw": b"ab",
                "np32": np.float32(i), "np64": np.int64(i), "nested": [self.X[i], (i, 2.5)],
                "point": Point(self.X[i], i), "img": np.ones((2, 3)) * i}


@pytest.mark.parametrize("ds", [SumDS(), MyDS(), Mixed(7)])
@pytest.mark.parametrize("kw", [dict(batch_size=2), dict(batch_size=3, drop_last=True),
                                dict(batch_size=1), dict(batch_size=10), dict(batch_size=None)])
def test_per_sample_dataset_batches_as_torch(ds, kw):
    same_batches(nn.DataLoader(ds, **kw), tud.DataLoader(ds, **kw))


def test_the_probe_cases():
    for xb, yb in nn.DataLoader(SumDS(), batch_size=2):
        np.testing.assert_array_equal(yb, xb.sum(1))       # each sample's own sum
    xb, yb = next(iter(nn.DataLoader(MyDS(), batch_size=2)))  # int(self.y[i]) works
    assert xb.shape == (2, 2) and yb.dtype == np.int64 and yb.tolist() == [0, 1]


def test_list_of_samples_is_a_dataset_as_in_torch():
    pairs = [(np.arange(3.0) + i, i) for i in range(5)]
    same_batches(nn.DataLoader(pairs, batch_size=2), tud.DataLoader(pairs, batch_size=2))
    rows = [np.arange(4.0) * i for i in range(6)]
    same_batches(nn.DataLoader(rows, batch_size=4), tud.DataLoader(rows, batch_size=4))


def test_collate_fn_sampler_and_batch_sampler_as_torch():
    ds = MyDS(9)

    def pad(batch):
        return [s[1] for s in batch], np.stack([s[0] for s in batch])

    for kw in [dict(batch_size=4, collate_fn=pad), dict(batch_size=None, collate_fn=lambda s: s[1]),
               dict(batch_size=2, sampler=[8, 1, 3, 3, 0]),
               dict(batch_size=2, sampler=[8, 1, 3, 3, 0], drop_last=True),
               dict(batch_sampler=[[0, 4], [8], [2, 2, 1]]),
               dict(batch_size=None, sampler=[4, 2])]:
        same_batches(nn.DataLoader(ds, **kw), tud.DataLoader(ds, **kw))
    ours = nn.DataLoader(ds, batch_sampler=nn.BatchSampler(nn.SequentialSampler(ds), 4, False))
    theirs = tud.DataLoader(ds, batch_sampler=tud.BatchSampler(tud.SequentialSampler(ds), 4,
                                                               False))
    same_batches(ours, theirs)
    assert list(nn.BatchSampler(range(10), 3, True)) == list(tud.BatchSampler(range(10), 3, True))
    # the fast path takes the samplers too
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    b = list(nn.DataLoader((X, y), batch_sampler=[[3, 1], [9]]))
    assert [t[1].tolist() for t in b] == [[3, 1], [9]]
    b = list(nn.DataLoader(nn.TensorDataset(X, y), batch_size=2, sampler=[5, 4, 7]))
    assert [t[1].tolist() for t in b] == [[5, 4], [7]]


def test_getitems_is_used_as_torch_does():
    class Batched(MyDS):
        calls = []

        def __getitems__(self, idx):
            self.calls.append(list(idx))
            return [self[i] for i in idx]

    ds = Batched(5)
    same_batches(nn.DataLoader(ds, batch_size=2), tud.DataLoader(ds, batch_size=2))
    assert ds.calls[:3] == [[0, 1], [2, 3], [4]]


def test_tensor_dataset_fast_path_matches_torch():
    X, y = np.random.default_rng(0).standard_normal((11, 3)), np.arange(11)
    ours = list(nn.DataLoader(nn.TensorDataset(X, y), batch_size=4))
    theirs = list(tud.DataLoader(tud.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                                 batch_size=4))
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        assert isinstance(a, tuple)
        same(list(a), b)
    # a plain array is a dataset of its rows
    same_batches(nn.DataLoader(X, batch_size=5), tud.DataLoader(X, batch_size=5))
    # (X, y) as before: tuples of arrays
    assert [len(b[0]) for b in nn.DataLoader((X, y), batch_size=4, drop_last=True)] == [4, 4]


def test_subclassed_tensor_dataset_is_indexed_per_sample():
    class Aug(nn.TensorDataset):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return x + 100.0, y

    X = np.arange(6.0)
    ds = Aug(X, np.arange(6))
    same_batches(nn.DataLoader(ds, batch_size=4), tud.DataLoader(ds, batch_size=4))


def test_shuffle_gives_torchs_samples_in_a_seeded_order():
    ds = Mixed(11)
    theirs = sorted(int(s) for b in tud.DataLoader(ds, batch_size=3, shuffle=True)
                    for s in b["y"])
    epochs = []
    for seed in (0, 0, 1):
        dl = nn.DataLoader(ds, batch_size=3, shuffle=True, seed=seed)
        runs = [[int(s) for b in dl for s in b["y"]] for _ in range(2)]
        for r in runs:
            assert sorted(r) == theirs == list(range(11))
        epochs.append(runs)
    assert epochs[0] == epochs[1] and epochs[0] != epochs[2]
    assert epochs[0][0] != epochs[0][1]                        # a new order each epoch
    g = [[int(s) for b in nn.DataLoader(ds, 3, shuffle=True, generator=np.random.default_rng(4))
          for s in b["y"]] for _ in range(2)]
    assert g[0] == g[1] and sorted(g[0]) == theirs
    # fast path: the same seeded order as a per-sample dataset
    X = np.arange(11)
    fast = [b[0].tolist() for b in nn.DataLoader((X,), batch_size=3, shuffle=True, seed=0)]
    slow = [b["y"].tolist() for b in nn.DataLoader(ds, batch_size=3, shuffle=True, seed=0)]
    assert fast == slow


def test_samplers():
    ds = MyDS(10)
    r = list(nn.RandomSampler(ds, generator=3))
    assert sorted(r) == list(range(10)) and r == list(nn.RandomSampler(ds, generator=3))
    assert len(list(nn.RandomSampler(ds, replacement=True, num_samples=25))) == 25
    assert sorted(nn.SubsetRandomSampler([2, 5, 7], generator=0)) == [2, 5, 7]
    w = list(nn.WeightedRandomSampler([0.0, 1.0, 0.0, 1.0], 50, generator=0))
    assert set(w) == {1, 3}
    b = list(nn.DataLoader(ds, batch_size=4, sampler=nn.SubsetRandomSampler(range(6), 0)))
    assert sorted(int(v) for x in b for v in x[1]) == list(range(6))


def test_subset_concat_and_random_split_as_torch():
    a, b = MyDS(4), SumDS()
    ours, theirs = nn.ConcatDataset([a, b]), tud.ConcatDataset([a, b])
    assert len(ours) == len(theirs) == 11 and ours.cumulative_sizes == theirs.cumulative_sizes
    for i in list(range(11)) + [-1, -11]:
        same(list(ours[i]), list(theirs[i]))
    with pytest.raises(ValueError):
        ours[-12]
    same_batches(nn.DataLoader(ours, batch_size=3), tud.DataLoader(theirs, batch_size=3))
    assert len(a + a) == 8 and isinstance(a + a, nn.ConcatDataset)
    sub = nn.Subset(b, [6, 0, 3])
    same_batches(nn.DataLoader(sub, batch_size=2), tud.DataLoader(tud.Subset(b, [6, 0, 3]), 2))
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    tsub = nn.Subset(nn.TensorDataset(X, y), [9, 2, 4])                 # fast path
    assert [t[1].tolist() for t in nn.DataLoader(tsub, batch_size=2)] == [[9, 2], [4]]
    for lengths in ([3, 7], [0.3, 0.7], [0.5, 0.25, 0.25], [0.34, 0.33, 0.33], [1.0]):
        parts = nn.random_split(MyDS(10), lengths, generator=0)
        want = tud.random_split(MyDS(10), lengths, generator=torch.Generator().manual_seed(0))
        assert [len(p) for p in parts] == [len(p) for p in want]
        got = sorted(i for p in parts for i in p.indices)
        assert got == list(range(10))
    assert [p.indices for p in nn.random_split(range(6), [2, 4], generator=1)] == \
        [p.indices for p in nn.random_split(range(6), [2, 4], generator=1)]
    nn.init.manual_seed(5)
    s1 = [p.indices for p in nn.random_split(range(6), [3, 3])]
    nn.init.manual_seed(5)
    assert s1 == [p.indices for p in nn.random_split(range(6), [3, 3])]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        nn.random_split(range(6), [2, 3])


def test_iterable_dataset_as_torch():
    def gen(self):
        for i in range(7):
            yield {"x": np.full(2, float(i)), "i": i}

    Ours = type("Ours", (nn.IterableDataset,), {"__iter__": gen})
    Theirs = type("Theirs", (tud.IterableDataset,), {"__iter__": gen})
    for kw in (dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=None)):
        a, b = list(nn.DataLoader(Ours(), **kw)), list(tud.DataLoader(Theirs(), **kw))
        assert len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
    with pytest.raises(ValueError):
        nn.DataLoader(Ours(), shuffle=True)


def test_errors_as_torch():
    ds = MyDS()
    with pytest.raises(ValueError):
        nn.DataLoader(ds, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError):
        nn.DataLoader(ds, batch_size=2, batch_sampler=[[0]])
    with pytest.raises(ValueError):
        nn.DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError):
        nn.DataLoader(ds, batch_size=0)
    with pytest.raises(RuntimeError, match="equal size"):
        nn.default_collate([[1, 2], [3]])
    with pytest.raises(TypeError):
        nn.default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(NotImplementedError):
        nn.Dataset()[0]
    with pytest.raises(TypeError):
        nn.DataLoader(ds, shuffle=True, generator=torch.Generator())


def test_default_collate_as_torch():
    cases = [[1, 2, 3], [1.5, 2.0], [True, False], ["a", "b"], [np.float32(1), np.float32(2)],
             [np.arange(3), np.arange(3)], [{"a": 1, "b": [1.0, 2.0]}, {"a": 2, "b": [3.0, 4.0]}],
             [Point(np.zeros(2), 1), Point(np.ones(2), 0)], [(1, "x"), (2, "y")]]
    for batch in cases + [[3, np.float64(1.5)], [np.int32(1), np.int32(2)]]:
        same(nn.default_collate(batch), tud.default_collate(batch))
    assert nn.default_collate([3, 1.5]).tolist() == [3.0, 1.5]      # not truncated to ints


def test_fit_with_a_per_sample_dataset():
    class Reg(nn.Dataset):
        X = np.random.default_rng(1).standard_normal((40, 3))

        def __len__(self):
            return len(self.X)

        def __getitem__(self, i):
            x = self.X[i]
            return x, np.array([x @ [1.0, -2.0, 0.5]])

    nn.init.manual_seed(0)
    model = nn.Linear(3, 1)
    h = nn.fit(model, nn.DataLoader(Reg(), batch_size=8, shuffle=True, seed=0), epochs=30,
               optimizer=nn.optim.Adam(model.parameters(), lr=0.1), loss="mse", verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0] * 0.1
