"""``nn.save`` / ``nn.load``: state dicts as ``.npz`` files, read without pickle.

Nothing in a file can run code (pickle is never used), and nothing in a file is taken on
trust: ``load`` reads each member's ``.npy`` header itself and refuses, with a
``ValueError`` naming the file and the key, a plain ``.npy`` file, duplicate or non-array
members, dtypes a state dict cannot hold (object, string, datetime, structured, complex), a
declared shape its data cannot fill (checked before anything is allocated), and damaged
compression or checksums. ``save`` refuses to write what ``load`` would refuse.
"""
import os
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

__all__ = ["save", "load"]

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


def save(state_dict, path):
    """Write name → array to ``path`` (``.npz``, uncompressed): bool, integer and float
    arrays only, under string keys; anything else is a ``TypeError`` naming the key."""
    arrays = {}
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise TypeError(f"nn.save: keys must be strings, got {k!r}")
        a = np.asarray(getattr(v, "value", v))
        why = _refusal(a)
        if why is not None:
            raise TypeError(f"nn.save: {k!r} has dtype {a.dtype}; a state-dict file holds "
                            f"bool, integer and float arrays, not {why}")
        arrays[k] = a
    # The zip written by hand (as np.savez does), so that no key can collide with one of
    # np.savez's own keyword arguments.
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for k, a in arrays.items():
            with zf.open(k + ".npy", "w", force_zip64=True) as fh:
                npy.write_array(fh, a, allow_pickle=False)


def load(path):
    """Read a state dict written by ``save``: a dict of NumPy arrays, in file order."""
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
        out = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"nn.load: {path!r}: member {info.filename!r} is not an "
                                 ".npy array; a state-dict file holds arrays only")
            key = info.filename[:-4]
            out[key] = _read_member(zf, info, path, key, size)
        return out


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
