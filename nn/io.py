"""``nn.save`` / ``nn.load``: state dicts and checkpoints as ``.npz`` files, read without
pickle.

A file holds arrays as ``.npy`` members. A flat dict of arrays (a model's
``state_dict()``) is written exactly as ``np.savez`` would; nested dicts, lists and
tuples, Python numbers, strings and ``None`` (an optimizer's or a scheduler's
``state_dict()``, a checkpoint ``{'model': ..., 'optimizer': ..., 'epoch': 3}``) and an
optional JSON ``metadata`` block go into one JSON member, ``__autodiff__.json``, that
records the structure and names the arrays' members by their paths (``optimizer/state/0/
exp_avg``). ``np.load(path, allow_pickle=False)`` reads every such file.

Nothing in a file can run code (pickle is never used), and nothing in a file is taken on
trust: ``load`` reads each member's ``.npy`` header itself and refuses, with a
``ValueError`` naming the file and the key, a plain ``.npy`` file, duplicate or non-array
members, dtypes a state dict cannot hold (object, string, datetime, structured, complex), a
declared shape its data cannot fill (checked before anything is allocated), damaged
compression or checksums, and a structure that does not match the members. ``save``
refuses to write what ``load`` would refuse, and what a weights file cannot hold: values
tracked by a transform or computed on the tape (save ``.value``), keys that are not
strings (integers are allowed inside nested dicts, as in an optimizer's state), names with
path separators, and objects that are not data.
"""
import json
import os
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

from autodiff.boxes import box_types
from autodiff.reverse import Variable

__all__ = ["save", "load", "load_metadata"]

# Bool, signed and unsigned integers, floats: what parameters and buffers are made of.
_KINDS = "biuf"
# Deflate expands by at most 1032:1 (a 258-byte match per 2 bits); a member declaring
# more than that for its compressed size cannot be genuine.
_MAX_DEFLATE_RATIO = 1032


def _refusal(a):
    """Why an array's dtype cannot be in a state-dict file, or None."""
    dt = a.dtype
    if dt.hasobject:
        return "object arrays (they would need pickle)"
    if dt.names is not None or dt.subdtype is not None:
        return "structured (record) arrays"
    if dt.kind not in _KINDS:
        what = {"c": "complex", "U": "string", "S": "bytes", "M": "datetime",
                "m": "timedelta", "V": "void"}.get(dt.kind, dt.kind)
        return f"{what} arrays"
    return None


_STRUCTURE = "__autodiff__.json"       # the member holding the structure and metadata
_FORMAT = "autodiff.nn.save"
# A structure block is a few numbers per array; more than this is not a genuine file.
_MAX_STRUCTURE_BYTES = 64 * 2 ** 20
_SEPARATORS = ("/", "\\", "\0")


def _is_array_leaf(v):
    return isinstance(v, (np.ndarray, np.generic)) or type(v) in box_types


def _as_saved_array(v, where):
    """The array a leaf is saved as: a Parameter (an eager leaf) as its data; any other
    tracked value is refused, as saving it would silently drop what it is tracked by."""
    if type(v) in box_types:
        if not (type(v) is Variable and v._eager_leaf()):
            raise TypeError(f"nn.save: {where} is a tracked value ({type(v).__name__} computed "
                            "on a tape or inside a transform); a weights file holds data: save "
                            "its .value (or .detach())")
        v = v.value
    a = np.asarray(v)
    why = _refusal(a)
    if why is not None:
        raise TypeError(f"nn.save: {where} has dtype {a.dtype}; a state-dict file holds "
                        f"bool, integer and float arrays, not {why}")
    return a


def _check_key(k, where, nested):
    if isinstance(k, bool) or not isinstance(k, (str, int)) or (isinstance(k, int)
                                                                 and not nested):
        raise TypeError(f"nn.save: keys must be strings (integers are allowed in nested "
                        f"dicts, as an optimizer's state), got {k!r} in {where}")
    if isinstance(k, str) and any(s in k for s in _SEPARATORS):
        raise ValueError(f"nn.save: key {k!r} in {where} holds a path separator (a slash or "
                         "a backslash) or a NUL; names in a weights file are plain names")


def _encode(v, path, arrays):
    """The JSON node of ``v``; arrays go into ``arrays`` under their member names."""
    where = repr("/".join(map(str, path))) if path else "the top level"
    if _is_array_leaf(v):
        name = "/".join(map(str, path))
        if name in arrays:
            raise ValueError(f"nn.save: two entries are both named {name!r} (a key 0 and a "
                             "key '0' in one dict?)")
        arrays[name] = _as_saved_array(v, where)
        node = {"a": name}
        if isinstance(v, np.generic):
            node["s"] = True
        return node
    if v is None or isinstance(v, (bool, str)):
        return {"v": v}
    if isinstance(v, int):
        return {"v": int(v)}
    if isinstance(v, float):
        return {"v": float(v)}
    if isinstance(v, dict):
        items = []
        for k, x in v.items():
            _check_key(k, where, nested=True)
            items.append([k, _encode(x, path + (k,), arrays)])
        return {"d": items}
    if isinstance(v, (list, tuple)):
        return {"t" if isinstance(v, tuple) else "l":
                [_encode(x, path + (i,), arrays) for i, x in enumerate(v)]}
    raise TypeError(f"nn.save: {where} holds a {type(v).__name__} object; a weights file "
                    "holds arrays, numbers, strings, None and dicts/lists/tuples of them "
                    "(no pickle)")


def _check_metadata(v, where="metadata"):
    if v is None or isinstance(v, (bool, int, float, str)):
        return
    if isinstance(v, dict):
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"nn.save: {where} keys must be strings (JSON), got {k!r}")
            _check_metadata(x, f"{where}[{k!r}]")
        return
    if isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            _check_metadata(x, f"{where}[{i}]")
        return
    raise TypeError(f"nn.save: {where} holds a {type(v).__name__} object; metadata is "
                    "JSON: dicts with string keys, lists, strings, numbers, booleans and None")


def save(obj, path, metadata=None):
    """Write a state dict, a Module (its ``state_dict()``) or a checkpoint to ``path``
    (``.npz``, uncompressed, no pickle).

    ``obj``: a dict with string keys whose values are arrays (bool, integer, float) or,
    nested to any depth, dicts, lists and tuples of arrays, Python numbers, strings and
    ``None``: ``nn.save({'model': model.state_dict(), 'optimizer': opt.state_dict(),
    'scheduler': sched.state_dict(), 'epoch': 3}, 'ckpt.npz')``. ``nn.load`` gives it back
    with the same structure (a flat dict of arrays is written exactly as ``np.savez``).
    ``metadata``: an optional JSON-able dict (class name, config, epoch, …) stored beside
    the arrays, read back by ``nn.load_metadata(path)`` or ``nn.load(path,
    with_metadata=True)``; JSON turns its tuples into lists.

    What a weights file cannot hold is refused: ``TypeError`` for non-string keys (integers
    are allowed in nested dicts), object/string/complex/datetime arrays, tracked values
    (save ``.value``) and other objects; ``ValueError`` for names with path separators.

    >>> import numpy as np, tempfile, os
    >>> from autodiff import nn
    >>> model = nn.Linear(2, 1)
    >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> nn.save(model, path, metadata={"class": "Linear", "config": [2, 1]})
    >>> sorted(nn.load(path)), nn.load_metadata(path)["config"]
    (['bias', 'weight'], [2, 1])
    """
    from .module import Module
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"nn.save: expected a state dict (a dict of arrays) or an nn.Module, "
                        f"got {type(obj).__name__}")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"nn.save: metadata must be a dict, got {type(metadata).__name__}")
        _check_metadata(metadata)
    for k in obj:
        _check_key(k, "the top level", nested=False)
    arrays = {}
    flat = all(_is_array_leaf(v) and not isinstance(v, np.generic) for v in obj.values())
    if flat:
        for k, v in obj.items():
            arrays[k] = _as_saved_array(v, repr(k))
        tree = None
    else:
        tree = _encode(obj, (), arrays)
    block = None
    if tree is not None or metadata is not None:
        block = json.dumps({"format": _FORMAT, "version": 1, "tree": tree,
                            "metadata": metadata}).encode()
    # The zip written by hand (as np.savez does), so that no key can collide with one of
    # np.savez's own keyword arguments.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for k, a in arrays.items():
            with zf.open(k + ".npy", "w", force_zip64=True) as fh:
                npy.write_array(fh, a, allow_pickle=False)
        if block is not None:
            zf.writestr(_STRUCTURE, block)


def load(path, with_metadata=False):
    """Read what ``save`` wrote: a dict of NumPy arrays in file order (a flat state dict),
    or the nested structure that was saved. With ``with_metadata=True`` returns
    ``(state, metadata)`` (``metadata`` is ``{}`` when the file has none)."""
    state, metadata = _load(path)
    return (state, metadata) if with_metadata else state


def load_metadata(path):
    """The JSON metadata block ``nn.save(..., metadata=...)`` stored in ``path`` (``{}``
    when there is none). Reads every member, as ``load`` does, so a damaged file is
    refused here too."""
    return _load(path)[1]


def _load(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"nn.load: no file {path!r}")
    with open(path, "rb") as fh:
        head = fh.read(len(npy.MAGIC_PREFIX))
    if head == npy.MAGIC_PREFIX:
        raise ValueError(f"nn.load: {path!r} is a single .npy array, not a state-dict file "
                         "(.npz written by nn.save); read it with np.load(path, "
                         "allow_pickle=False)")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ValueError(f"nn.load: {path!r} is not a readable state-dict file ({e})") from e
    size = os.path.getsize(path)
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"nn.load: {path!r} holds the member {n!r} more than once; "
                                 "which one is meant is ambiguous, so the file is refused")
        out, block = {}, None
        for info in infos:
            if info.filename == _STRUCTURE:
                block = _read_structure(zf, info, path)
                continue
            if not info.filename.endswith(".npy"):
                raise ValueError(f"nn.load: {path!r}: member {info.filename!r} is not an "
                                 ".npy array; a state-dict file holds arrays only")
            key = info.filename[:-4]
            out[key] = _read_member(zf, info, path, key, size)
    if block is None:
        return out, {}
    metadata = block.get("metadata") or {}
    if block.get("tree") is None:
        return out, metadata
    used = set()
    state = _decode(block["tree"], out, used, path)
    unused = [k for k in out if k not in used]
    if unused or not isinstance(state, dict):
        raise ValueError(f"nn.load: {path!r}: the structure block does not match the "
                         f"arrays (members {unused} are not in it); damaged file")
    return state, metadata


def _read_structure(zf, info, path):
    where = f"nn.load: {path!r}, member {_STRUCTURE!r}"
    if info.file_size > _MAX_STRUCTURE_BYTES:
        raise ValueError(f"{where}: {info.file_size} bytes, more than a structure block "
                         "can be (damaged or hostile file)")
    try:
        with zf.open(info) as fh:
            raw = fh.read(_MAX_STRUCTURE_BYTES + 1)
        block = json.loads(raw.decode("utf-8"))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{where}: not a readable JSON block ({type(e).__name__}: "
                         f"{e})") from e
    if not isinstance(block, dict) or block.get("format") != _FORMAT \
            or block.get("version") != 1:
        raise ValueError(f"{where}: not a structure block of nn.save (format version 1)")
    if block.get("metadata") is not None and not isinstance(block["metadata"], dict):
        raise ValueError(f"{where}: the metadata is not a dict")
    return block


def _decode(node, arrays, used, path):
    bad = ValueError(f"nn.load: {path!r}: malformed structure block near {str(node)[:80]!r}")
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise bad
    if "a" in node:
        name = node["a"]
        if not isinstance(name, str) or name not in arrays or name in used:
            raise ValueError(f"nn.load: {path!r}: the structure block names array {name!r}, "
                             "which the file does not hold (or names it twice)")
        used.add(name)
        a = arrays[name]
        if node.get("s"):
            if a.ndim != 0:
                raise bad
            return a[()]
        return a
    if len(node) != 1:
        raise bad
    (kind, body), = node.items()
    if kind == "v":
        if body is not None and not isinstance(body, (bool, int, float, str)):
            raise bad
        return body
    if kind == "d":
        if not isinstance(body, list):
            raise bad
        out = {}
        for item in body:
            if not isinstance(item, list) or len(item) != 2 \
                    or not isinstance(item[0], (str, int)) or isinstance(item[0], bool):
                raise bad
            out[item[0]] = _decode(item[1], arrays, used, path)
        return out
    if kind in ("l", "t"):
        if not isinstance(body, list):
            raise bad
        items = [_decode(x, arrays, used, path) for x in body]
        return tuple(items) if kind == "t" else items
    raise bad


def _read_member(zf, info, path, key, size):
    where = f"nn.load: {path!r}, key {key!r}"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{where}: compression method {info.compress_type} is not one "
                         "np.savez writes (stored or deflated); refused")
    if info.header_offset + info.compress_size > size:
        raise ValueError(f"{where}: the member claims more bytes than the file holds "
                         "(truncated file)")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size \
            or info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024:
        raise ValueError(f"{where}: declares {info.file_size} bytes in "
                         f"{info.compress_size} compressed bytes, more than any genuine "
                         "member (damaged or hostile file)")
    try:
        with zf.open(info) as fh:
            try:
                version = npy.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = npy.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, fortran, dtype = npy.read_array_header_2_0(fh)
                else:
                    raise ValueError(f".npy format version {version} (only 1.0 and 2.0 hold "
                                     "plain numeric arrays)")
            except ValueError as e:
                raise ValueError(f"{where}: not a readable .npy header ({e})") from e
            why = _refusal(np.empty(0, dtype=dtype))
            if why is not None:
                raise ValueError(f"{where}: dtype {dtype}: {why} are refused (a state dict "
                                 "holds bool, integer and float arrays)")
            count = 1
            for n in shape:
                count *= int(n)                  # Python ints: no overflow
            nbytes = count * dtype.itemsize
            data_bytes = info.file_size - fh.tell()
            if nbytes != data_bytes:
                # Checked before allocating: a header declaring (10**12,) is refused here.
                raise ValueError(f"{where}: the header declares shape {shape} of {dtype} "
                                 f"({nbytes} bytes) but the member holds {data_bytes} bytes "
                                 "of data")
            a = np.empty(count, dtype=dtype)
            view = memoryview(a.view(np.uint8))
            got = 0
            while got < nbytes:
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != nbytes or fh.read(1):      # the read to the end checks the CRC
                raise ValueError(f"{where}: {got} bytes of data where the header declares "
                                 f"{nbytes}")
    except ValueError as e:
        if str(e).startswith("nn.load"):
            raise
        raise ValueError(f"{where}: damaged member ({e})") from e
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
            NotImplementedError) as e:
        raise ValueError(f"{where}: damaged member ({type(e).__name__}: {e})") from e
    a = a.reshape(shape, order="F" if fortran else "C")
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a
