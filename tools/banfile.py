"""Read and write ban.h model files (.ban), version 1. Standard library and numpy only.

The layout is documented in docs/FORMAT.md; this module is its Python half:

    write_ban(path, metadata, tensors)   # atomic: temporary file, fsync, rename (write_atomic)
    meta, tensors = read_ban(path)       # validating reader (for tests and tools)

`metadata` maps keys to values: int -> INT64, float -> FLOAT64, str -> STRING,
list of str -> STRING_ARRAY, list of int -> INT64_ARRAY (a value may also be given as
(type, value) to force a type). `tensors` is an ordered mapping name -> numpy array
(float32 is written as F32, float16 as F16).
"""
import errno
import os
import secrets
import stat
import struct

import numpy as np

MAGIC = b"BANM"
VERSION = 1
ALIGNMENT = 64
HEADER = struct.Struct("<4sIIIQQQQ")  # magic, version, alignment, reserved, n_meta, n_tensors, data_offset, data_size

INT64, FLOAT64, STRING, STRING_ARRAY, INT64_ARRAY = 1, 2, 3, 4, 5
F32, F16 = 0, 1
DTYPES = {F32: np.dtype("<f4"), F16: np.dtype("<f2")}
MAX_NAME = 255


class FormatError(Exception):
    """A .ban file that does not follow the format."""


# ban.h's table of the weights a model may hold (BAN__WEIGHTS in ban.h), mirrored:
# (name, bias, stack, rows, cols, when, linear), the shapes and `when` in the letters of
# letters(); a stack of `stack` (rows, cols) matrices ("0": one), cols "0": a vector.
# tests/test_tables.py holds it equal to `ban info --tensors --json`.
WEIGHTS = (
    ("word_embedding.weight", None, "0", "Vr", "Ew", "1", 0),
    ("word_embedding_extra.weight", None, "0", "Vr", "Ew", "tables == 2", 0),
    ("gru.weight_ih", "gru.bias_ih", "0", "3 * D", "Ein", "1", 1),
    ("gru.weight_hh", "gru.bias_hh", "0", "3 * D", "D", "1", 1),
    ("adapter.bbox_linear.weight", "adapter.bbox_linear.bias", "0", "Eb", "5", "adapter * (Eb > 0)", 1),
    ("adapter.frcn_linear.weight", "adapter.frcn_linear.bias", "0", "Dvis", "Dv + Eb", "adapter", 1),
    ("visual.weight", "visual.bias", "0", "kD + vqa * G * Dg", "Dvis", "1", 1),
    ("attention.q_net.weight", "attention.q_net.bias", "0", "kD", "D", "1", 1),
    ("attention.h_mat", None, "0", "G", "kD", "1", 0),
    ("attention.h_bias", None, "0", "G", "0", "1", 0),
    ("glimpse.q_net.weight", "glimpse.q_net.bias", "G", "Dg", "D", "vqa", 1),
    ("glimpse.q_prj.weight", "glimpse.q_prj.bias", "G", "D", "D", "vqa", 1),
    ("glimpse.c_prj.weight", "glimpse.c_prj.bias", "G", "D", "O + 1", "vqa * (O > 0)", 1),
    ("classifier.0.weight", "classifier.0.bias", "0", "H", "D", "vqa", 1),
    ("classifier.1.weight", "classifier.1.bias", "0", "A", "H", "vqa", 1),
)


def letters(meta):
    """The letters of WEIGHTS for a model's metadata (as ban.h computes them, ban__letters)."""
    get = meta.get
    V, D = get("ban.vocab_size"), get("ban.hidden_dim")
    pad = get("tokenizer.padding_id", V)
    adapter = 1 if get("ban.adapter", "none") != "none" else 0
    Dv = get("ban.feature_dim")
    return {"V": V, "Vr": V + (pad == V), "Ew": get("ban.embedding_dim"), "tables": get("ban.embedding_tables"),
            "Ein": get("ban.embedding_dim") * get("ban.embedding_tables"), "D": D,
            "kD": get("ban.attention_rank") * D, "Dg": get("ban.glimpse_rank", 1) * D, "G": get("ban.glimpses"),
            "Dv": Dv, "Eb": get("ban.adapter_box_dim", 0) if adapter else 0,
            "Dvis": get("ban.adapter_dim") if adapter else Dv + 6 * get("ban.spatial_concat", 0),
            "O": get("ban.counter_objects", 0), "H": get("ban.classifier_hidden", 0), "A": get("ban.answer_count", 0),
            "vqa": 1 if get("ban.task") == "vqa" else 0, "adapter": adapter}


def shapes(meta):
    """{name: shape} of every tensor of WEIGHTS a model of this metadata holds, in rows (its
    counter's functions and an image encoder's tensors are not in the table)."""
    env = letters(meta)

    def ev(expr):
        return int(eval(expr, {"__builtins__": {}}, env))  # the table's own expressions only

    out = {}
    for name, bias, stack, rows, cols, when, _linear in WEIGHTS:
        if not ev(when):
            continue
        lead = (ev(stack),) if ev(stack) else ()
        out[name] = lead + (ev(rows),) + ((ev(cols),) if ev(cols) else ())
        if bias:
            out[bias] = lead + (ev(rows),)
    return out


# The Linear weights a file may store in panels of PANEL rows, as NAME + "_panels": W (N, K) as
# (ceil(N/32), K, 32) with element [p, k, j] = W[32p + j, k] and zeros past N; a stack
# (G, N, K) panel by panel, (G, ceil(N/32), K, 32). ban.h reads a panel as one contiguous
# stream in its own matrix product. The bias (same name, "bias" for "weight") gives N.
PANEL = 32
PANEL_WEIGHTS = tuple(w[0] for w in WEIGHTS if w[6])


def to_panels(w):
    """(..., N, K) -> (..., ceil(N/32), K, 32)."""
    w = np.asarray(w)
    n, k = w.shape[-2:]
    p = -(-n // PANEL)
    padded = np.zeros(w.shape[:-2] + (p * PANEL, k), w.dtype)
    padded[..., :n, :] = w
    return np.ascontiguousarray(np.swapaxes(padded.reshape(w.shape[:-2] + (p, PANEL, k)), -1, -2))


def from_panels(w, n):
    """(..., P, K, 32) -> (..., n, K): the first n rows."""
    w = np.asarray(w)
    rows = np.swapaxes(w, -1, -2)
    return np.ascontiguousarray(rows.reshape(w.shape[:-3] + (w.shape[-3] * PANEL, w.shape[-2]))[..., :n, :])


def with_layout(tensors, layout):
    """The same tensors with the weights of PANEL_WEIGHTS in `layout`, "panels" or "rows",
    whichever they are in now (order kept)."""
    if layout not in ("panels", "rows"):
        raise ValueError("layout %r (panels or rows)" % layout)
    out = {}
    for name, arr in tensors.items():
        if layout == "panels" and name in PANEL_WEIGHTS:
            out[name + "_panels"] = to_panels(arr)
        elif layout == "rows" and name.endswith("_panels") and name[:-7] in PANEL_WEIGHTS:
            base = name[:-7]
            out[base] = from_panels(arr, np.asarray(tensors[base.replace("weight", "bias")]).shape[-1])
        else:
            out[name] = arr
    return out


def _string(s, what):
    raw = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if b"\0" in raw:
        raise ValueError("%s contains a NUL byte: %r" % (what, s))
    return struct.pack("<I", len(raw)) + raw + b"\0"


def _infer_type(key, value):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], int):
        return value
    if isinstance(value, bool) or isinstance(value, (int, np.integer)):
        return INT64, int(value)
    if isinstance(value, (float, np.floating)):
        return FLOAT64, float(value)
    if isinstance(value, str):
        return STRING, value
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return STRING_ARRAY, list(value)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
            return INT64_ARRAY, [int(v) for v in value]
    raise TypeError("metadata %r: unsupported value %r" % (key, value))


def _int64(key, value):
    if not -2 ** 63 <= value < 2 ** 63:
        raise ValueError("metadata %r: %s does not fit in 64 bits" % (key, value if abs(value) < 10 ** 30 else
                                                                        "a %d-bit integer" % value.bit_length()))
    return value


def _encode_value(key, typ, value):
    if typ == INT64:
        return struct.pack("<q", _int64(key, value))
    if typ == FLOAT64:
        return struct.pack("<d", value)
    if typ == STRING:
        raw = value.encode("utf-8")
        if b"\0" in raw:
            raise ValueError("metadata %r contains a NUL byte" % key)
        return raw + b"\0"
    if typ == STRING_ARRAY:
        return struct.pack("<Q", len(value)) + b"".join(_string(v, "%s[%d]" % (key, i)) for i, v in enumerate(value))
    if typ == INT64_ARRAY:
        return struct.pack("<Q", len(value)) + struct.pack("<%dq" % len(value), *(_int64(key, v) for v in value))
    raise TypeError("metadata %r: unknown type %d" % (key, typ))


def _pad(n, align=ALIGNMENT):
    return (-n) % align


def encode_ban(metadata, tensors):
    """The bytes of a .ban file."""
    directory = bytearray()
    for key, value in metadata.items():
        typ, val = _infer_type(key, value)
        payload = _encode_value(key, typ, val)
        directory += _string(key, "metadata key") + struct.pack("<IQ", typ, len(payload)) + payload
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        arr = np.asarray(arr)
        if arr.dtype == np.float32:
            dtype = F32
        elif arr.dtype == np.float16:
            dtype = F16
        else:
            raise TypeError("tensor %r: dtype %s (write float32 or float16)" % (name, arr.dtype))
        if not 1 <= arr.ndim <= 4 or min(arr.shape) < 1:
            raise ValueError("tensor %r: shape %s" % (name, arr.shape))
        if len(name.encode()) > MAX_NAME:
            raise ValueError("tensor name too long: %r" % name)
        data = np.ascontiguousarray(arr, dtype=DTYPES[dtype]).tobytes()
        directory += _string(name, "tensor name") + struct.pack("<II", dtype, arr.ndim)
        directory += struct.pack("<%dQ" % arr.ndim, *arr.shape) + struct.pack("<Q", offset)
        blobs.append((offset, data))
        offset += len(data) + _pad(len(data))
    head_len = HEADER.size + len(directory)
    data_offset = head_len + _pad(head_len)
    out = bytearray(HEADER.pack(MAGIC, VERSION, ALIGNMENT, 0, len(metadata), len(tensors), data_offset, offset))
    out += directory
    out += b"\0" * (data_offset - len(out))
    for off, data in blobs:
        assert len(out) == data_offset + off
        out += data + b"\0" * _pad(len(data))
    return bytes(out)


def write_atomic(path, data):
    """Write bytes to path so that a reader sees the old file or the new one, never half of one:
    a temporary file beside it under an unpredictable name, created exclusively (so that no
    planted file or symlink is ever opened), written, fsynced, renamed over path, and the
    folder fsynced. Its mode is 0666 less the umask, as for any new file. A symlink at path
    is replaced, not followed. A path that exists but is not a regular file (a device such as
    /dev/null, a FIFO, /dev/stdout) is written in place: renaming would replace the node."""
    try:
        st = os.stat(path)
    except FileNotFoundError:  # nothing there, or a dangling symlink
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder", path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        with open(path, "wb", buffering=0) as f:  # O_TRUNC means nothing to a device or a FIFO
            f.write(data)
        return
    folder, name = os.path.split(path)
    folder = folder or "."
    for _ in range(100):
        tmp = os.path.join(folder, ".%s.%s.tmp" % (name[:200], secrets.token_hex(8)))
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary name", os.path.join(folder, "." + name))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # the rename itself survives a crash once the folder is on disk
        dirfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass  # some filesystems cannot fsync a folder; the data itself is on disk
    finally:
        os.close(dirfd)


def write_ban(path, metadata, tensors):
    write_atomic(path, encode_ban(metadata, tensors))


class _Cursor:
    def __init__(self, buf, pos=0):
        self.buf, self.pos = buf, pos

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.buf):
            raise FormatError("offset %d: %s runs past the end of the file" % (self.pos, what))
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt, what):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def string(self, what):
        (n,) = self.unpack("<I", what + " length")
        raw = self.take(n + 1, what)
        if raw[-1:] != b"\0" or b"\0" in raw[:-1]:
            raise FormatError("offset %d: %s is not NUL-terminated" % (self.pos - n - 1, what))
        return raw[:-1].decode("utf-8")


def decode_ban(buf):
    """Parse the bytes of a .ban file into (metadata dict, tensors dict of numpy arrays)."""
    cur = _Cursor(buf)
    magic, version, align, _, n_meta, n_tensors, data_offset, data_size = cur.unpack(HEADER.format, "header")
    if magic != MAGIC:
        raise FormatError("not a .ban file (magic %r)" % magic)
    if version != VERSION:
        raise FormatError("version %d (this reader knows %d)" % (version, VERSION))
    if data_offset + data_size > len(buf):
        raise FormatError("data section [%d, %d) beyond the file (%d bytes)" % (data_offset, data_offset + data_size, len(buf)))
    meta = {}
    for _ in range(n_meta):
        key = cur.string("metadata key")
        typ, size = cur.unpack("<IQ", "metadata %r type" % key)
        payload = _Cursor(cur.take(size, "metadata %r value" % key))
        if typ == INT64:
            (val,) = payload.unpack("<q", key)
        elif typ == FLOAT64:
            (val,) = payload.unpack("<d", key)
        elif typ == STRING:
            raw = payload.take(size, key)
            val = raw[:-1].decode("utf-8")
        elif typ == STRING_ARRAY:
            (n,) = payload.unpack("<Q", key)
            val = [payload.string("%s[%d]" % (key, i)) for i in range(n)]
        elif typ == INT64_ARRAY:
            (n,) = payload.unpack("<Q", key)
            val = list(payload.unpack("<%dq" % n, key))
        else:
            val = (typ, bytes(payload.buf))
        meta[key] = val
    tensors = {}
    for _ in range(n_tensors):
        name = cur.string("tensor name")
        dtype, ndim = cur.unpack("<II", name)
        shape = cur.unpack("<%dQ" % ndim, name)
        (off,) = cur.unpack("<Q", name)
        dt = DTYPES[dtype]
        nbytes = int(np.prod(shape)) * dt.itemsize
        if off + nbytes > data_size:
            raise FormatError("tensor %r beyond the data section" % name)
        start = data_offset + off
        tensors[name] = np.frombuffer(buf, dtype=dt, count=nbytes // dt.itemsize, offset=start).reshape(shape)
    return meta, tensors


def read_ban(path):
    with open(path, "rb") as f:
        return decode_ban(f.read())
