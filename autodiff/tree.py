"""Pytrees at the API boundary: nested tuples, lists and dicts of arrays, flattened to a
list of leaves and rebuilt with the same structure (dict keys in sorted order, as JAX)."""

__all__ = ["flatten", "unflatten"]


def flatten(tree):
    """``(leaves, treedef)``; ``unflatten(treedef, leaves)`` rebuilds ``tree``."""
    leaves = []
    return leaves, _flatten(tree, leaves)


def _flatten(t, leaves):
    if type(t) in (tuple, list):
        return (type(t), tuple(_flatten(c, leaves) for c in t))
    if type(t) is dict:
        keys = sorted(t)
        return (dict, tuple(keys), tuple(_flatten(t[k], leaves) for k in keys))
    if t is None:
        return (None,)
    leaves.append(t)
    return ()


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
    return kind(_build(c, it) for c in d[1])
