"""Pytrees at the API boundary: nested tuples, lists, dicts and namedtuples of arrays,
flattened to a list of leaves and rebuilt with the same structure (dict keys in sorted
order, as JAX; an ``OrderedDict`` in its own order, a ``defaultdict`` keeps its factory).
``None`` and empty containers are structure without leaves."""
from collections import OrderedDict, defaultdict

__all__ = ["flatten", "unflatten", "structure", "leaf_tuple"]


def flatten(tree):
    """``(leaves, treedef)``; ``unflatten(treedef, leaves)`` rebuilds ``tree``."""
    leaves = []
    return leaves, _flatten(tree, leaves)


def leaf_tuple(t):
    """``t`` itself when it is a tuple of leaves (the common ``args=(a, b)``: ``flatten``
    would list them as they are), else ``None``."""
    if type(t) is not tuple:
        return None
    for v in t:
        tv = type(v)
        if tv is tuple or tv is list or tv is dict or v is None or isinstance(v, (tuple, dict)):
            return None
    return t


def _flatten(t, leaves):
    tt = type(t)
    if tt is tuple or tt is list:       # (list comprehensions: no generator frames)
        return (tt, tuple([_flatten(c, leaves) for c in t]))
    if tt is dict:
        keys = sorted(t)
        return (dict, tuple(keys), tuple([_flatten(t[k], leaves) for k in keys]))
    if t is None:
        return (None,)
    if tt is OrderedDict or tt is defaultdict:
        keys = list(t) if tt is OrderedDict else sorted(t)
        factory = t.default_factory if tt is defaultdict else None
        return (_Mapping, (tt, factory), tuple(keys), tuple([_flatten(t[k], leaves)
                                                            for k in keys]))
    if isinstance(t, tuple) and hasattr(tt, "_fields"):
        # A namedtuple (collections.namedtuple, typing.NamedTuple, NumPy's SlogdetResult,
        # EighResult, …): its fields, rebuilt as the same type.
        return (_NamedTuple, tt, tuple(_flatten(c, leaves) for c in t))
    leaves.append(t)
    return ()


class _NamedTuple:
    """Marks a namedtuple node in a treedef: ``(_NamedTuple, type, children)``."""


class _Mapping:
    """Marks an ``OrderedDict`` or ``defaultdict`` node: ``(_Mapping, (type, default
    factory), keys, children)``."""


def unflatten(treedef, leaves):
    it = iter(leaves)
    out = _build(treedef, it)
    return out


def _build(d, it):
    if d == ():
        return next(it)
    kind = d[0]
    if kind is None:
        return None
    if kind is dict:
        return {k: _build(c, it) for k, c in zip(d[1], d[2])}
    if kind is _NamedTuple:
        return d[1](*[_build(c, it) for c in d[2]])
    if kind is _Mapping:
        (tt, factory), pairs = d[1], [(k, _build(c, it)) for k, c in zip(d[2], d[3])]
        return defaultdict(factory, pairs) if tt is defaultdict else OrderedDict(pairs)
    return kind([_build(c, it) for c in d[1]])


class _Leaf:
    def __repr__(self):
        return "*"


def structure(treedef):
    """A readable picture of a treedef, leaves drawn as ``*``: ``({'a': *, 'b': [*, *]},)``."""
    n = [0]

    def count(d):
        if d == ():
            n[0] += 1
        elif d[0] is dict:
            for c in d[2]:
                count(c)
        elif d[0] is _Mapping:
            for c in d[3]:
                count(c)
        elif d[0] is _NamedTuple:
            for c in d[2]:
                count(c)
        elif d[0] is not None:
            for c in d[1]:
                count(c)
    count(treedef)
    return repr(unflatten(treedef, [_Leaf()] * n[0]))
