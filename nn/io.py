"""``nn.save`` / ``nn.load``: state dicts as ``.npz`` files, read without pickle.

Nothing in a file can run code (``allow_pickle=False``); a file that is not a state dict,
or is damaged, is a ``ValueError`` naming the file; object arrays are refused."""
import os
import zipfile

import numpy as np

__all__ = ["save", "load"]


def save(state_dict, path):
    """Write name → array to ``path`` (``.npz``, uncompressed)."""
    arrays = {}
    for k, v in state_dict.items():
        a = np.asarray(getattr(v, "value", v))
        if a.dtype.kind not in "biufc":
            raise TypeError(f"nn.save: {k!r} has dtype {a.dtype}; only numeric arrays are saved")
        arrays[k] = a
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load(path):
    """Read a state dict written by ``save``: a dict of NumPy arrays, in file order."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"nn.load: no file {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise ValueError(f"nn.load: {path!r} is not a readable state-dict file ({e})") from e
    except ValueError as e:
        raise ValueError(f"nn.load: {path!r} holds something other than plain numeric arrays "
                         f"({e}); it is refused rather than unpickled") from e
