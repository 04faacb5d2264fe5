"""tools/torchfile.py against hostile files, one test per class of attack (issue 17), and against
torch.load on the reference's and OpenVQA's checkpoints.

Every hostile file is built here, byte by byte where torch could never write it, and loaded in
a child process whose address space is capped (MEMORY_CAP): an amplification then fails with a
MemoryError or a kill instead of passing slowly, and a crash fails only its own test."""
import collections
import io
import os
import pickle
import resource
import stat
import struct
import subprocess
import sys
import threading
import zlib

import numpy as np
import pytest

from conftest import ROOT, fixture_path

import torchfile  # noqa: E402

TOOLS = os.path.join(ROOT, "tools")
EXPORT = [sys.executable, os.path.join(TOOLS, "ban_export.py")]
MEMORY_CAP = 1 << 30  # address space of a child: Python and numpy take about 250 MB of it


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(args, **kw):
    """A command run with its address space capped at MEMORY_CAP."""
    return subprocess.run([str(a) for a in args], preexec_fn=_cap_memory, capture_output=True, text=True,
                          timeout=300, **kw)


def export_error(*args):
    """ban_export's one-line error for these arguments (the test fails on anything else)."""
    proc = run_capped(EXPORT + list(args))
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ban_export: error: "), proc.stderr[-3000:]
    return lines[0]


LOADER = """import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import torchfile

def arrays(obj, where=""):
    if isinstance(obj, np.ndarray):
        yield where, obj.shape
    elif isinstance(obj, (dict, list, tuple)):
        for k, v in (obj.items() if isinstance(obj, dict) else enumerate(obj)):
            yield from arrays(v, "%s/%s" % (where, k))

try:
    obj = getattr(torchfile, sys.argv[2])(sys.argv[3])
except torchfile.CheckpointError as e:
    print("refused: %s" % e)
else:
    print("loaded: %s, tensors %s" % (type(obj).__name__, list(arrays(obj))))
"""


def load_capped(path, kind="load_checkpoint"):
    """'refused: MESSAGE' or 'loaded: TYPE, tensors [(PATH, SHAPE)...]' from torchfile.<kind>(path) in a capped child; a
    traceback (MemoryError, RecursionError, any other exception) or a crash fails the test."""
    proc = run_capped([sys.executable, "-c", LOADER, TOOLS, kind, path])
    assert proc.returncode == 0 and not proc.stderr, (proc.returncode, proc.stderr[-3000:])
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[-3000:]
    return lines[0]


# ---- writing pickles and checkpoints by hand ---------------------------------------------------------

def integer(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -2 ** 31 <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return (b"\x8a" + bytes([len(raw)]) if len(raw) < 256 else b"\x8b" + struct.pack("<i", len(raw))) + raw


def text(s):
    raw = s.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(raw)) + raw


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def name(module, attr):
    return b"c%s\n%s\n" % (module.encode(), attr.encode())


def dictionary(*pairs):
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def tensor(size, stride, offset=0, key="0", numel=1, stype="FloatStorage", legacy=False, view=None):
    """_rebuild_tensor_v2 of storage `key` as torch pickles it; legacy: with a view field, None
    or (view key, offset, size) of the storage."""
    views = [b"N" if view is None else tup(text(view[0]), integer(view[1]), integer(view[2]))] if legacy else []
    pid = tup(text("storage"), name("torch", stype), text(key), text("cpu"), integer(numel), *views)
    return (name("torch._utils", "_rebuild_tensor_v2")
            + tup(pid + b"Q", integer(offset), tup(*map(integer, size)), tup(*map(integer, stride)), b"\x89",
                  name("collections", "OrderedDict") + b")R") + b"R")


def checkpoint_pickle(state_items, **extra):
    """{'epoch': 1, 'model_state': {...}, extra...} as pickle bytes (protocol 2)."""
    pairs = [(text("epoch"), integer(1)), (text("model_state"), dictionary(*state_items))]
    pairs += [(text(k), v) for k, v in extra.items()]
    return b"\x80\x02" + dictionary(*pairs) + b"."


def raw_zip(entries):
    """A zip archive written field by field, so that a test can set what zipfile never would.
    entries: (name, stored bytes, method, flags, crc, declared inflated size); crc and size
    None mean those of the stored bytes."""
    out, central = bytearray(), bytearray()
    for entry_name, data, method, flags, crc, size in entries:
        raw = entry_name.encode()
        crc = zlib.crc32(data) if crc is None else crc
        size = len(data) if size is None else size
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, method, 0, 0x21, crc, len(data), size, len(raw), 0)
        out += raw + data
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, method, 0, 0x21, crc, len(data), size,
                               len(raw), 0, 0, 0, 0, 0, offset) + raw
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central),
                                 len(out), 0)
    return bytes(out)


def stored(entry_name, data):
    return (entry_name, data, 0, 0, None, None)


def zip_checkpoint(path, pkl, storages=None, extra_entries=()):
    entries = [stored("archive/data.pkl", pkl), stored("archive/version", b"3\n")]
    entries += [stored("archive/data/" + k, v) for k, v in (storages or {}).items()]
    path.write_bytes(raw_zip(entries + list(extra_entries)))
    return path


def legacy_bytes(pkl, storages=()):
    """The legacy layout: magic, protocol, system info, the object `pkl`, the keys, the storages
    given as (key, element count, bytes)."""
    out = io.BytesIO()
    for obj in (torchfile.LEGACY_MAGIC, torchfile.LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(obj, out, protocol=2)
    out.write(pkl)
    pickle.dump([k for k, _, _ in storages], out, protocol=2)
    for _, count, data in storages:
        out.write(struct.pack("<q", count) + data)
    return out.getvalue()


def legacy_checkpoint(path, pkl, storages=()):
    path.write_bytes(legacy_bytes(pkl, storages))
    return path


FLOAT1 = {"0": b"\0\0\x80\x3f"}  # one float32, 1.0


def one_tensor_checkpoint(tmp_path, layout, size, stride, offset=0, numel=1, name_="ckpt"):
    pkl = checkpoint_pickle([(text("w"), tensor(size, stride, offset, numel=numel, legacy=layout == "legacy"))])
    data = b"\0\0\x80\x3f" * numel
    if layout == "zip":
        return zip_checkpoint(tmp_path / (name_ + ".pth"), pkl, {"0": data})
    return legacy_checkpoint(tmp_path / (name_ + ".pth"), pkl, [("0", numel, data)])


LAYOUTS = ["zip", "legacy"]


def hostile_checkpoint(tmp_path, layout, pkl):
    """A checkpoint whose object pickle is `pkl` (no storages)."""
    if layout == "zip":
        return zip_checkpoint(tmp_path / "hostile.pth", pkl)
    return legacy_checkpoint(tmp_path / "hostile.pth", pkl)


# ---- nesting ------------------------------------------------------------------------------------------

def deep_tuple_key(levels):
    """{((((1,),),)...): 2} with `levels` TUPLE1 opcodes: one byte a level."""
    return b"\x80\x02}" + integer(1) + b"\x85" * levels + integer(2) + b"s."


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("levels", [10_000, 1_000_000])
def test_a_tuple_nested_a_million_deep_is_refused(tmp_path, layout, levels):
    out = load_capped(hostile_checkpoint(tmp_path, layout, deep_tuple_key(levels)))
    assert out.startswith("refused:") and "containers nested more than 64 deep" in out, out


def test_a_nested_dictionary_pickle_is_one_error_line(tmp_path):
    dic = tmp_path / "dictionary.pkl"
    dic.write_bytes(b"\x80\x02(" + deep_tuple_key(1_000_000)[2:-1] + b"]l.")
    line = export_error(fixture_path("ban_ref_g2.pth"), "--dictionary", dic, "-o", tmp_path / "o.ban")
    assert "dictionary.pkl: offset" in line and "nested more than 64 deep" in line
    assert not (tmp_path / "o.ban").exists()


@pytest.mark.parametrize("pkl,message", [
    (b"\x80\x02" + b"(" * 1_000_000 + b".", "MARKs nested more than 64 deep"),
    # lists nested bottom-up through the memo: x = []; then 100,000 times x = [x]
    (b"\x80\x02]q\x00" + b"]h\x00aq\x00" * 100_000 + b".", "containers nested more than 64 deep"),
    # top-down: the outer list is built first, then its inner lists are filled through the memo
    (b"\x80\x02]q\x00]q\x01h\x00h\x01a0]q\x02h\x01h\x02a.", "changes a list after putting it in another"),
    (b"\x80\x02]q\x00h\x00a.", "a list that contains itself"),
    (b"\x80\x02}q\x00K\x01h\x00s.", "a dict that contains itself"),
], ids=["marks", "lists-bottom-up", "lists-top-down", "list-cycle", "dict-cycle"])
def test_deep_and_cyclic_containers_are_refused(tmp_path, pkl, message):
    path = tmp_path / "x.pkl"
    path.write_bytes(pkl)
    out = load_capped(path, "load_pickle")
    assert out.startswith("refused:") and message in out, out


def test_keys_that_could_collide_or_recurse_are_refused(tmp_path):
    for key in (b"K\x01K\x02\x86", b"G" + struct.pack(">d", 1.5), integer(2 ** 61 - 1)):
        path = tmp_path / "k.pkl"
        path.write_bytes(b"\x80\x02}" + key + b"K\x00s.")
        out = load_capped(path, "load_pickle")
        assert "a dictionary key or set member that is" in out, out


# ---- amplification -------------------------------------------------------------------------------

def test_a_memo_index_of_2_to_the_29_costs_nothing(tmp_path):
    """One LONG_BINPUT 0x20000000: Python's unpickler sized its memo array by it (8 GB)."""
    pkl = b"\x80\x02" + text("x" * 200) + b"r\x00\x00\x00\x20" + b"0j\x00\x00\x00\x20."
    assert len(pkl) < 247
    path = tmp_path / "memo.pkl"
    path.write_bytes(pkl)
    assert load_capped(path, "load_pickle") == "loaded: str, tensors []"
    path.write_bytes(b"\x80\x02j\x00\x00\x00\x20.")
    assert "memo entry 536870912 was never stored" in load_capped(path, "load_pickle")


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_view_with_zero_strides_is_charged_for_what_it_copies(tmp_path, layout):
    """(60000, 20000) with strides (0, 0) over one float: every element is in the storage, but
    copying it out is 4.8 GB."""
    path = one_tensor_checkpoint(tmp_path, layout, (60000, 20000), (0, 0))
    assert path.stat().st_size < 1000
    out = load_capped(path)
    assert out.startswith("refused:") and "tensor of size [60000, 20000]" in out and "loader's limit" in out, out
    # what torch itself writes for an expanded tensor is read as torch reads it
    small = one_tensor_checkpoint(tmp_path, layout, (3, 1000), (0, 0), name_="small")
    arr = torchfile.load_checkpoint(str(small))["model_state"]["w"]
    assert arr.shape == (3, 1000) and (arr == 1).all() and arr.flags.c_contiguous


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("size,stride,offset,numel,message", [
    ((2, 3), (3, 1), 1, 6, "reaches element 6"),              # the last element one past the end
    ((4,), (2,), 0, 6, "reaches element 6"),
    ((1,), (1,), 6, 6, "reaches element 6"),                  # the offset alone is past the end
    ((2, 2), (-1, 1), 2, 6, "negative or beyond 2^60"),
    ((2,), (1,), -1, 6, "negative or beyond 2^60"),
    ((2 ** 70, 0), (1, 1), 0, 6, "negative or beyond 2^60"),
    ((1,) * 33, (1,) * 33, 0, 6, "33 dimensions"),
])
def test_views_reaching_outside_their_storage_are_refused(tmp_path, layout, size, stride, offset, numel, message):
    out = load_capped(one_tensor_checkpoint(tmp_path, layout, size, stride, offset, numel))
    assert out.startswith("refused:") and message in out, out


@pytest.mark.parametrize("view,expect", [(("v", 1, 2), "[1.0, 2.0]"), (("v", 3, 2), "view [3, 3 + 2) of storage '0'"),
                                         (("v", 0, 1), "reaches element 1"), (("v", -1, 2), "view [-1, -1 + 2)")])
def test_legacy_storage_views(tmp_path, view, expect):
    """A legacy checkpoint may rebuild a tensor from a view (offset, size) of a storage."""
    pkl = checkpoint_pickle([(text("w"), tensor((2,), (1,), numel=4, legacy=True, view=view))])
    path = legacy_checkpoint(tmp_path / "v.pth", pkl, [("0", 4, np.arange(4, dtype="<f4").tobytes())])
    try:
        got = str(torchfile.load_checkpoint(str(path))["model_state"]["w"].tolist())
    except torchfile.CheckpointError as e:
        got = str(e)
    assert expect in got, got


def test_a_zip_entry_inflating_to_4_gib_is_refused_unread(tmp_path):
    """4 MB of deflate that inflates to 4 GiB, declared as such, for a storage of one float:
    the old loader read it whole (z.read(entry)[:need])."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)
    assert block == comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)  # so it can be repeated
    bomb = block * 4095 + comp.flush(zlib.Z_FINISH)
    pkl = checkpoint_pickle([(text("w"), tensor((1,), (1,)))])
    path = tmp_path / "bomb.pth"
    path.write_bytes(raw_zip([stored("archive/data.pkl", pkl),
                              ("archive/data/0", bomb, 8, 0, 0, 4095 << 20)]))
    assert path.stat().st_size < 5 << 20
    out = load_capped(path)
    assert "storage '0' holds 4293918720 bytes, but 1 elements of torch.FloatStorage need 4" in out, out
    # the same stream declared as 4 bytes: only 4 bytes are inflated (and the CRC is wrong)
    path.write_bytes(raw_zip([stored("archive/data.pkl", pkl), ("archive/data/0", bomb, 8, 0, 0, 4)]))
    assert "entry 'archive/data/0': BadZipFile: Bad CRC-32" in load_capped(path)
    # and a data.pkl that would inflate beyond the budget is not inflated at all
    path.write_bytes(raw_zip([("archive/data.pkl", bomb, 8, 0, 0, 4095 << 20)]))
    assert "archive/data.pkl: reading it would take more than" in load_capped(path)


@pytest.mark.parametrize("entry,message", [
    (("archive/data/0", b"\0\0\x80\x3f", 0, 1, None, None), "entry 'archive/data/0' is encrypted"),
    (("archive/data/0", b"\0\0\x80\x3f", 99, 0, None, None), "uses compression method 99"),
    (("archive/data/0", b"\0\0\x80\x3f", 12, 0, None, None), "uses compression method 12"),
    (("archive/data/0", b"\0\0\x80\x3e", 0, 0, zlib.crc32(b"\0\0\x80\x3f"), None), "Bad CRC-32"),
    (("archive/data/0", b"\xff\xff\xff\xff", 8, 0, None, 4), "Error -3 while decompressing"),
])
def test_zip_entries_zipfile_cannot_read_are_one_error(tmp_path, entry, message):
    pkl = checkpoint_pickle([(text("w"), tensor((1,), (1,)))])
    path = tmp_path / "z.pth"
    path.write_bytes(raw_zip([stored("archive/data.pkl", pkl), entry]))
    line = export_error(path, "-o", tmp_path / "o.ban")
    assert message in line, line


# ---- errors that escaped as tracebacks ---------------------------------------------------------------

def test_a_storage_count_of_10_to_the_5000_is_one_error(tmp_path):
    """Python will not even print that number (its int-to-str limit)."""
    pkl = checkpoint_pickle([(text("w"), tensor((1,), (1,), numel=10 ** 5000, legacy=True))])
    path = legacy_checkpoint(tmp_path / "count.pth", pkl, [("0", 1, FLOAT1["0"])])
    line = export_error(path, "-o", tmp_path / "o.ban")
    assert "storage '0' has element count a 16610-bit integer" in line, line


@pytest.mark.parametrize("which", ["--dictionary", "--answers"])
def test_a_surrogate_in_a_word_or_an_answer_is_one_error(tmp_path, which):
    bad = tmp_path / "bad.pkl"
    if which == "--dictionary":
        words = ["w%d" % i for i in range(47)] + ["\ud800"]
        bad.write_bytes(b"\x80\x02(" + dictionary(*[(text(w), integer(i)) for i, w in enumerate(words)]) + b"]l.")
    else:
        bad.write_bytes(b"\x80\x02(" + b"".join(text(a) for a in ["a"] * 29 + ["\udfff"]) + b"l.")
    line = export_error(fixture_path("ban_ref_g2.pth"), which, bad, "-o", tmp_path / "o.ban")
    assert "bad.pkl: offset" in line and "a string that is not UTF-8" in line, line


def test_an_epoch_of_2_to_the_64_is_one_error(tmp_path):
    state = torchfile.load_checkpoint(fixture_path("ban_ref_g2.pth"))
    torch = pytest.importorskip("torch")
    path = tmp_path / "epoch.pth"
    torch.save({"epoch": 2 ** 64, "model_state": {k: torch.from_numpy(v) for k, v in state["model_state"].items()}},
               path)
    line = export_error(path, "-o", tmp_path / "o.ban")
    assert "'epoch' is a 65-bit integer, not a 64-bit integer" in line, line
    assert not (tmp_path / "o.ban").exists()


def test_a_value_the_format_cannot_hold_is_one_error(tmp_path):
    import banfile
    with pytest.raises(ValueError, match="metadata 'encoder.layers': 18446744073709551616 does not fit in 64 bits"):
        banfile.encode_ban({"encoder.layers": [1, 2 ** 64]}, {})
    torch = pytest.importorskip("torch")
    state = torchfile.load_checkpoint(fixture_path("ban_ref_g2.pth"))["model_state"]
    path = tmp_path / "conv.pth"
    torch.save({"model_state": {k: torch.from_numpy(v) for k, v in state.items()},
                "conventions": {"question_length": 10 ** 5000}}, path)
    line = export_error(path, "-o", tmp_path / "o.ban")
    assert "unknown conventions (question_padding 'unmasked', box_padding 'zero_rows', question_length a 16610-bit " \
           "integer)" in line, line


@pytest.mark.parametrize("data,message", [
    (b"PK\x03\x04garbage", "corrupt zip checkpoint"),
    (b"\x80\x02K\x01", "the pickle ends without a STOP opcode"),
    (b"\x80\x02\xff.", "unknown opcode 0xff"),
    (b"\x80\x06K\x01.", "pickle protocol 6"),
    (b"\x80\x02X\xff\xff\xff\xff.", "cut short: 4294967295 bytes wanted"),
    (b"\x80\x02\x8b\xff\xff\xff\xff.", "a negative length"),
    (b"\x80\x02Fnan-ish\n.", "a malformed number"),
    (b"\x80\x02I" + b"9" * 5000 + b"\n.", "a malformed number"),
    (b"\x80\x02e.", "no MARK to go back to"),
    (b"\x80\x02a.", "pops an empty stack"),
])
def test_malformed_pickles_are_one_error(tmp_path, data, message):
    path = tmp_path / "m.pth"
    path.write_bytes(data)
    assert message in export_error(path, "-o", tmp_path / "o.ban")


def test_files_that_never_end_are_refused(tmp_path):
    assert "/dev/zero: not a regular file" in export_error("/dev/zero", "-o", tmp_path / "o.ban")
    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)
    assert "fifo.pkl: not a regular file" in export_error(fixture_path("ban_ref_g2.pth"), "--answers", fifo, "-o",
                                                          tmp_path / "o.ban")


# ---- code, and state shared between loads ---------------------------------------------------------

TARGETS = [("os", "system"), ("posix", "system"), ("subprocess", "Popen"), ("builtins", "eval"),
           ("builtins", "exec"), ("builtins", "getattr"), ("builtins", "__import__"), ("__builtin__", "eval"),
           ("numpy.core.multiarray", "_reconstruct"), ("numpy", "load"), ("torch", "load"),
           ("torch.storage", "_load_from_bytes"), ("ctypes", "CDLL"), ("pickle", "loads"), ("io", "open"),
           ("collections", "namedtuple"), ("torch._utils", "_rebuild_tensor_v3")]


def calls(module, attr, how, marker):
    """A pickle that calls module.attr(command) through opcode style `how`."""
    arg = text("touch %s" % marker)
    if how == "GLOBAL":
        return b"\x80\x02" + name(module, attr) + tup(arg) + b"R."
    if how == "STACK_GLOBAL":
        return b"\x80\x04" + text(module) + text(attr) + b"\x93" + arg + b"\x85R."
    if how == "INST":
        return b"(" + arg + b"i%s\n%s\n." % (module.encode(), attr.encode())
    if how == "OBJ":
        return b"\x80\x02(" + name(module, attr) + arg + b"o."
    if how == "NEWOBJ":
        return b"\x80\x02" + name(module, attr) + tup(arg) + b"\x81."
    if how == "NEWOBJ_EX":
        return b"\x80\x04" + name(module, attr) + tup(arg) + b"}\x92."
    if how == "EXT":
        return b"\x80\x02\x82\x01" + tup(arg) + b"R."
    if how == "BUILD":  # __setstate__-style: set attributes of an object the pickle names
        return b"\x80\x02" + name(module, attr) + dictionary((text("__call__"), arg)) + b"b."
    raise ValueError(how)


@pytest.mark.parametrize("how", ["GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT", "BUILD"])
def test_pickles_that_would_run_code_are_refused(tmp_path, how):
    marker = tmp_path / "pwned"
    for module, attr in TARGETS:
        pkl = calls(module, attr, how, marker)
        for loader, path in ((torchfile.load_pickle, tmp_path / "p.pkl"),
                             (torchfile.load_checkpoint, zip_checkpoint(tmp_path / "z.pth", pkl)),
                             (torchfile.load_state_dict, legacy_checkpoint(tmp_path / "l.pth", pkl))):
            if loader is torchfile.load_pickle:
                path.write_bytes(pkl)
            with pytest.raises(torchfile.CheckpointError, match="refusing to load it|which is not a function|"
                                                                  "sets the attributes of"):
                loader(str(path))
            assert not marker.exists(), (module, attr, how)


def test_a_plain_pickle_builds_no_tensors(tmp_path):
    path = tmp_path / "t.pkl"
    path.write_bytes(b"\x80\x02" + tensor((1,), (1,)) + b".")
    with pytest.raises(torchfile.CheckpointError, match="torch._utils._rebuild_tensor_v2, which"):
        torchfile.load_pickle(str(path))


def test_no_load_changes_how_the_next_one_loads(tmp_path):
    """BUILD on an allowed global rewrote the module-level storage types the unpickler handed
    out: one checkpoint changed how every later one loaded. Each load has its own now."""
    golden = torchfile.load_checkpoint(fixture_path("ban_ref_g2.pth"))
    attacks = [
        name("torch", "FloatStorage") + dictionary((text("dtype"), text("<i4"))) + b"b0" + integer(1),
        name("torch._utils", "_rebuild_tensor_v2") + dictionary((text("__code__"), integer(1))) + b"b0" + integer(1),
        name("collections", "OrderedDict") + dictionary((text("__init__"), integer(1))) + b"b0" + integer(1),
    ]
    for attack in attacks:
        with pytest.raises(torchfile.CheckpointError, match="sets the attributes of"):
            torchfile.load_checkpoint(str(zip_checkpoint(tmp_path / "a.pth", b"\x80\x02" + attack + b".")))
    again = torchfile.load_checkpoint(fixture_path("ban_ref_g2.pth"))
    assert again["model_state"] is not golden["model_state"]
    for k, v in golden["model_state"].items():
        assert again["model_state"][k].dtype == v.dtype and np.array_equal(again["model_state"][k], v), k
    # and a state dict's own attributes (torch's _metadata) are accepted, and dropped
    pkl = (b"\x80\x02" + name("collections", "OrderedDict") + b")R"
           + dictionary((text("_metadata"), dictionary((text(""), dictionary((text("version"), integer(1))))))) + b"b.")
    path = tmp_path / "meta.pkl"
    path.write_bytes(pkl)
    assert torchfile.load_pickle(str(path)) == collections.OrderedDict()


# ---- mutations of the golden checkpoint --------------------------------------------------------------

MUTATE = """import resource, sys
sys.path.insert(0, sys.argv[1])
import torchfile
data = open(sys.argv[2], "rb").read()
refused = out_of_memory = 0
for pos in map(int, sys.argv[4:]):
    with open(sys.argv[3], "wb") as f:
        f.write(data[:pos] + b"\\x7f" + data[pos + 1:])
    try:
        torchfile.load_checkpoint(sys.argv[3])
    except torchfile.CheckpointError as e:
        refused += 1
        out_of_memory += "MemoryError" in str(e)
    except MemoryError:
        out_of_memory += 1
print(refused, out_of_memory, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_single_byte_mutations_of_numbers_stay_within_the_budget(tmp_path):
    """Each byte of the numbers in the first 4.5 KB of the legacy golden checkpoint's object pickle
    (sizes, strides, offsets, element counts, memo indices, string lengths) set to 0x7f: each copy
    loads or is refused by the budget, in one capped child. The old loader ran out of memory on
    about one mutation in 75 (3 to 5 GB uncapped: memo indices, string lengths)."""
    import pickletools
    golden = fixture_path("ban_ref_g2.legacy.pth")
    data = open(golden, "rb").read()
    stream = io.BytesIO(data)
    for _ in range(3):
        pickle.load(stream)
    start = stream.tell()
    widths = {"BININT": 4, "BININT1": 1, "BININT2": 2, "LONG_BINPUT": 4, "LONG_BINGET": 4, "BINUNICODE": 4}
    positions = [start + pos + 1 + i for op, arg, pos in pickletools.genops(io.BytesIO(data[start:]))
                 if op.name in widths and pos < 4500 for i in range(widths[op.name])]
    proc = run_capped([sys.executable, "-c", MUTATE, TOOLS, golden, tmp_path / "m.pth"] + positions)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-3000:]
    refused, out_of_memory, peak_kb = map(int, proc.stdout.split())
    assert 0 < refused < len(positions)  # some are refused, some are harmless
    assert out_of_memory == 0, "%d of %d copies ran out of memory instead of meeting the budget" % (out_of_memory,
                                                                                                  len(positions))
    assert peak_kb < 200 << 10, "the child's peak resident memory was %d KB" % peak_kb


# ---- the output file -------------------------------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_the_output_mode_follows_the_umask(tmp_path, umask, mode):
    out = tmp_path / "m.ban"
    proc = subprocess.run(EXPORT + [fixture_path("ban_ref_g2.pth"), "-o", str(out)], capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_symlink_at_the_output_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    out = tmp_path / "m.ban"
    out.symlink_to(victim)
    dangling = tmp_path / "d.ban"
    dangling.symlink_to(tmp_path / "nowhere")
    for path in (out, dangling):
        proc = run_capped(EXPORT + [fixture_path("ban_ref_g2.pth"), "-o", path])
        assert proc.returncode == 0, proc.stderr
        assert not path.is_symlink() and path.read_bytes()[:4] == b"BANM"
    assert victim.read_bytes() == b"precious" and not (tmp_path / "nowhere").exists()
    assert sorted(os.listdir(tmp_path)) == ["d.ban", "m.ban", "victim"]


def test_a_device_or_a_fifo_is_written_in_place(tmp_path):
    """`-o /dev/null` replaced /dev/null by a regular file when run as root. The device here is a
    private node of /dev/null's device, so that a writer that gets it wrong harms nothing."""
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        null = None  # not root: the FIFO below still tests the rule
    if null is not None:
        proc = run_capped(EXPORT + [fixture_path("ban_ref_g2.pth"), "-o", null])
        assert proc.returncode == 0, proc.stderr
        assert stat.S_ISCHR(os.stat(null).st_mode)
        null.unlink()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    proc = run_capped(EXPORT + [fixture_path("ban_ref_g2.pth"), "-o", fifo])
    reader.join(60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got and got[0][:4] == b"BANM"
    assert os.listdir(tmp_path) == ["fifo"]


SIGTERM_WHILE_WRITING = """import os, runpy, signal, sys
fsync = os.fsync
os.fsync = lambda fd: (os.kill(os.getpid(), signal.SIGTERM), fsync(fd))  # while the temporary file exists
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")  # the command itself, with its own SIGTERM handler
"""


def test_sigterm_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    out = tmp_path / "m.ban"
    out.write_bytes(b"previous")
    proc = run_capped([sys.executable, "-c", SIGTERM_WHILE_WRITING] + EXPORT[1:] + [fixture_path("ban_ref_g2.pth"),
                                                                                  "-o", out])
    assert proc.returncode == 130 and proc.stderr.strip().endswith("interrupted; %s was left as it was" % out), \
        (proc.returncode, proc.stderr)
    assert out.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.ban"]


def test_an_output_that_cannot_be_written_is_one_error(tmp_path):
    line = export_error(fixture_path("ban_ref_g2.pth"), "-o", tmp_path / "missing" / "m.ban")
    assert "No such file or directory" in line
    assert "is a folder" in export_error(fixture_path("ban_ref_g2.pth"), "-o", tmp_path)


# ---- OpenVQA's checkpoints, against torch.load -------------------------------------------------------

def assert_same(ours, theirs, where=""):
    """torchfile's object equals torch.load's: the same containers, keys, values, and every tensor
    the same dtype, shape and bits."""
    torch = pytest.importorskip("torch")
    if isinstance(theirs, torch.Tensor):
        ref = theirs.numpy()
        assert isinstance(ours, np.ndarray) and ours.dtype == ref.dtype and ours.shape == ref.shape, where
        assert np.array_equal(ours, ref), where
    elif isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for k in theirs:
            assert_same(ours[k], theirs[k], "%s/%s" % (where, k))
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, "%s/%d" % (where, i))
    else:
        assert type(ours) is type(theirs) and ours == theirs, (where, ours, theirs)


@pytest.mark.parametrize("name_", ["openvqa/ovqa_vqa_g2.pkl", "openvqa/ovqa_gqa_g2.pkl", "ban_ref_g2.pth",
                                   "ban_ref_g2.legacy.pth", "ban_ref_flickr.pth"])
def test_checkpoints_read_as_torch_reads_them(name_):
    torch = pytest.importorskip("torch")
    path = fixture_path(name_)
    ref = torch.load(path)
    assert_same(torchfile.load_checkpoint(path), ref)
    state, entries = torchfile.load_state_dict(path)
    key = "state_dict" if "state_dict" in ref else "model_state"
    assert_same(state, ref[key])
    assert entries == {k: v for k, v in ref.items() if k not in (key, "optimizer")}
    if name_.startswith("openvqa/"):
        assert set(ref) == {"state_dict", "optimizer", "lr_base", "epoch"}
        assert all(k.startswith("module.") for k in state) == (name_ == "openvqa/ovqa_gqa_g2.pkl")


def openvqa_like(torch, step_as_tensor, prefix):
    """What OpenVQA's train_engine saves: a model's state dict, Adamax's, lr_base and the epoch."""
    net = torch.nn.Sequential(torch.nn.Embedding(7, 5), torch.nn.GRU(5, 4, batch_first=True))
    opt = torch.optim.Adamax(net.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    net(torch.zeros(2, 3, dtype=torch.long))[0].sum().backward()
    opt.step()
    osd = opt.state_dict()
    for s in osd["state"].values():
        s["step"] = s["step"] if step_as_tensor else int(s["step"])  # 2019's Adamax kept an int
    osd["param_groups"][0]["extra"] = [True, None, (1, 2.5), ["a", 3]]
    return {"state_dict": collections.OrderedDict((prefix + k, v) for k, v in net.state_dict().items()),
            "optimizer": osd, "lr_base": 1.4e-3, "epoch": 13}


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
@pytest.mark.parametrize("step_as_tensor", [False, True], ids=["step-int", "step-tensor"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_openvqa_checkpoints_of_every_kind(tmp_path, legacy, step_as_tensor, prefix):
    torch = pytest.importorskip("torch")
    ckpt = openvqa_like(torch, step_as_tensor, prefix)
    path = tmp_path / "epoch13.pkl"
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)
    assert_same(torchfile.load_checkpoint(str(path)), torch.load(path))
    state, entries = torchfile.load_state_dict(str(path))
    assert_same(state, torch.load(path)["state_dict"])
    assert entries == {"lr_base": 1.4e-3, "epoch": 13}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_optimizer_is_checked_but_not_copied(tmp_path, layout):
    """load_state_dict parses the optimizer's tensors (a view outside its storage is refused) but
    copies none: one that would cost 4.8 GB to copy out is harmless there."""
    legacy = layout == "legacy"
    model = (text("w"), tensor((1,), (1,), legacy=legacy))
    for optimizer, message in ((tensor((60000, 20000), (0, 0), legacy=legacy), None),
                               (tensor((2,), (1,), legacy=legacy), "reaches element 1")):
        pkl = checkpoint_pickle([model], optimizer=dictionary((text("exp_avg"), optimizer)))
        path = (zip_checkpoint(tmp_path / "o.pth", pkl, FLOAT1) if not legacy else
                legacy_checkpoint(tmp_path / "o.pth", pkl, [("0", 1, FLOAT1["0"])]))
        out = load_capped(path, "load_state_dict")
        if message:
            assert out.startswith("refused:") and message in out, out
        else:
            assert out.endswith("tensors [('/0/w', (1,))]"), out
            assert "loader's limit" in load_capped(path, "load_checkpoint")


def test_every_pickle_protocol_is_read():
    obj = {"a": [1, 2.5, -3, 2 ** 70, "x\u00e9", None, True, False, (1, (2, 3)), (), []], 7: {"n": -1}}
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        assert torchfile._unpickle(pickle.dumps(obj, protocol=proto), 0, "t", torchfile.Budget("t", 0))[0] == obj
    rich = {"s": {1, "x"}, "f": frozenset({2}), "b": b"by", "ba": bytearray(b"z"), "o": collections.OrderedDict(k=1)}
    assert torchfile._unpickle(pickle.dumps(rich, protocol=5), 0, "t", torchfile.Budget("t", 0),
                               torchfile._names(tensors=False))[0] == rich
    for py2 in (b"S'abc'\np0\n.", b"U\x03abc.", b"T\x03\x00\x00\x00abc.", b"Vabc\n."):
        assert torchfile._unpickle(py2, 0, "t", torchfile.Budget("t", 0))[0] == "abc"
