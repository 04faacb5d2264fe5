"""Read PyTorch checkpoint files without PyTorch, and without running their code.

    obj = load_checkpoint(path)   # tensors come back as numpy arrays

Both layouts written by torch.save are read (facts in FORMATS.md §8):
  * zip (PyTorch >= 1.6): <name>/data.pkl plus one raw storage per <name>/data/<key>;
  * legacy (before 1.6): five pickles in a row (magic number, protocol version, system
    info, the object, the storage keys), then each storage as an 8-byte element count
    and its raw little-endian data.

The unpickler resolves only a short fixed list of names (OrderedDict, the tensor
rebuild functions, the storage classes); anything else, such as os.system or
builtins.eval, raises CheckpointError before it can be called. Every storage size,
offset and stride is checked against the bytes actually present.
"""
import collections
import io
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # converted to float32 after rebuilding
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}


class CheckpointError(Exception):
    """A checkpoint that cannot or must not be read."""


class StorageType:
    """Stands for torch.<X>Storage in a pickle: a name and a dtype, nothing callable."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    def __repr__(self):
        return "torch.%s" % self.name


class Storage:
    def __init__(self, stype, key, array):
        self.stype, self.key, self.array = stype, key, array


def _rebuild_tensor(storage, offset, size, stride, *rest):
    """torch._utils._rebuild_tensor_v2 (and v1): a strided view of a storage, copied out."""
    if not isinstance(storage, Storage):
        raise CheckpointError("tensor rebuilt from %r instead of a storage" % (storage,))
    size, stride = tuple(size), tuple(stride)
    if not (isinstance(offset, int) and len(size) == len(stride)
            and all(isinstance(x, int) for x in size + stride)):
        raise CheckpointError("storage %s: malformed tensor geometry" % storage.key)
    if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise CheckpointError("storage %s: negative offset, size or stride" % storage.key)
    numel = storage.array.size
    count = 1
    for s in size:
        count *= s
    if count:
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= numel:
            raise CheckpointError("storage %s: tensor of size %s, stride %s at offset %d reads element %d "
                                  "of %d" % (storage.key, list(size), list(stride), offset, last, numel))
        item = storage.array.itemsize
        view = np.lib.stride_tricks.as_strided(storage.array[offset:], shape=size,
                                               strides=[st * item for st in stride], writeable=False)
        arr = np.array(view, copy=True)
    else:
        arr = np.zeros(size, dtype=storage.array.dtype)
    if storage.stype.name == "BFloat16Storage":
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _rebuild_parameter(data, requires_grad, backward_hooks, *rest):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
for _name in STORAGE_DTYPES:
    ALLOWED_GLOBALS[("torch", _name)] = StorageType(_name)


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can build only dicts, lists, numbers, strings and tensors."""

    def __init__(self, file, what, storage_loader=None, allowed=None):
        super().__init__(file)
        self.what = what
        self.storage_loader = storage_loader
        self.allowed = ALLOWED_GLOBALS if allowed is None else allowed

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise CheckpointError("%s: the pickle refers to %s.%s, which a checkpoint of tensors never needs; "
                                  "refusing to load it (it could run code)" % (self.what, module, name)) from None

    def persistent_load(self, pid):
        if self.storage_loader is None:
            raise CheckpointError("%s: unexpected persistent id %r" % (self.what, pid))
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], StorageType) and isinstance(pid[2], str)):
            raise CheckpointError("%s: malformed storage reference %r" % (self.what, pid))
        return self.storage_loader(pid)


def _safe_load(data, what, storage_loader=None, allowed=None):
    try:
        return SafeUnpickler(io.BytesIO(data) if isinstance(data, bytes) else data, what, storage_loader,
                             allowed).load()
    except CheckpointError:
        raise
    except Exception as e:  # truncated or malformed pickle
        raise CheckpointError("%s: malformed pickle (%s: %s)" % (what, type(e).__name__, e)) from None


def load_pickle(path):
    """A plain pickle (dictionary.pkl, label2ans.pkl) read with the same restrictions."""
    with open(path, "rb") as f:
        return _safe_load(f.read(), path)


def _load_zip(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise CheckpointError("%s: a zip checkpoint holds exactly one <name>/data.pkl (found %d)" % (path, len(pkls)))
        prefix = pkls[0][:-len("data.pkl")]
        order = prefix + "byteorder"
        if order in names and z.read(order).strip() not in (b"little", b""):
            raise CheckpointError("%s: big-endian checkpoint (byteorder %r)" % (path, z.read(order)))
        cache = {}

        def storage(pid):
            stype, key, numel = pid[1], pid[2], pid[4]
            if key not in cache:
                entry = prefix + "data/" + key
                if entry not in names:
                    raise CheckpointError("%s: storage %r is missing (no %s)" % (path, key, entry))
                info = z.getinfo(entry)
                need = numel * stype.dtype.itemsize if isinstance(numel, int) and numel >= 0 else -1
                if need < 0 or info.file_size < need:
                    raise CheckpointError("%s: storage %r holds %d bytes, %r elements of %s need %d"
                                          % (path, key, info.file_size, numel, stype.name, need))
                raw = z.read(entry)[:need]
                cache[key] = Storage(stype, key, np.frombuffer(raw, dtype=stype.dtype))
            return cache[key]

        return _safe_load(z.read(pkls[0]), path, storage)


def _ignore(*args):
    return None


def _load_legacy(path):
    with open(path, "rb") as f:
        data = f.read()
    stream = io.BytesIO(data)
    if _safe_load(stream, path + " (magic number)") != LEGACY_MAGIC:
        raise CheckpointError("%s: neither a zip nor a legacy PyTorch checkpoint" % path)
    if _safe_load(stream, path + " (protocol)") != LEGACY_PROTOCOL:
        raise CheckpointError("%s: unsupported legacy protocol version" % path)
    info = _safe_load(stream, path + " (system info)")
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise CheckpointError("%s: big-endian checkpoint" % path)

    # The storages' bytes follow the object, so read it twice: once to learn the
    # storages it uses and where it ends, then again with their data in hand.
    object_start = stream.tell()
    declared = {}  # key -> (storage type, element count)

    def declare(pid):
        stype, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(numel, int) or numel < 0:
            raise CheckpointError("%s: storage %r has element count %r" % (path, key, numel))
        if declared.setdefault(key, (stype, numel)) != (stype, numel):
            raise CheckpointError("%s: storage %r declared twice with different types or sizes" % (path, key))
        return None

    # the first pass records storages; its tensors are never built
    probe_names = dict(ALLOWED_GLOBALS)
    probe_names[("torch._utils", "_rebuild_tensor_v2")] = _ignore
    probe_names[("torch._utils", "_rebuild_tensor")] = _ignore
    _safe_load(stream, path, declare, probe_names)
    keys = _safe_load(stream, path + " (storage keys)")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError("%s: malformed storage key list" % path)
    arrays = {}
    pos = stream.tell()
    for key in keys:
        if key not in declared:
            raise CheckpointError("%s: storage %r is listed but never used" % (path, key))
        stype, numel = declared[key]
        if pos + 8 > len(data):
            raise CheckpointError("%s: truncated before storage %r (offset %d)" % (path, key, pos))
        (count,) = struct.unpack_from("<q", data, pos)
        nbytes = count * stype.dtype.itemsize
        if count != numel or pos + 8 + nbytes > len(data):
            raise CheckpointError("%s: storage %r at offset %d: %d elements recorded, %d declared, %d bytes left"
                                  % (path, key, pos, count, numel, len(data) - pos - 8))
        arrays[key] = np.frombuffer(data, dtype=stype.dtype, count=count, offset=pos + 8)
        pos += 8 + nbytes
    missing = [k for k in declared if k not in arrays]
    if missing:
        raise CheckpointError("%s: storages %s have no data" % (path, missing[:5]))

    def storage(pid):
        stype, key = pid[1], pid[2]
        view = pid[5] if len(pid) > 5 else None
        root = arrays[key]
        if view is None:
            return Storage(stype, key, root)
        if not (isinstance(view, tuple) and len(view) == 3 and all(isinstance(x, int) for x in view[1:])):
            raise CheckpointError("%s: malformed storage view %r" % (path, view))
        _, offset, size = view
        if offset < 0 or size < 0 or offset + size > root.size:
            raise CheckpointError("%s: view [%d, %d) of storage %r (%d elements)" % (path, offset, offset + size,
                                                                                     key, root.size))
        return Storage(stype, key, root[offset:offset + size])

    return _safe_load(io.BytesIO(data[object_start:]), path, storage)


def load_checkpoint(path):
    """The object saved in a PyTorch checkpoint, with tensors as numpy arrays."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        try:
            return _load_zip(path)
        except zipfile.BadZipFile as e:
            raise CheckpointError("%s: corrupt zip checkpoint (%s)" % (path, e)) from None
    if head[:1] == b"\x80":
        return _load_legacy(path)
    raise CheckpointError("%s: not a PyTorch checkpoint (starts with %r)" % (path, head))
