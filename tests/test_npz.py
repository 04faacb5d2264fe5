"""OpenVQA's per-image feature files (examples/npz.h): the .npz archives of VQA-v2 and GQA
features, as numpy itself writes them (np.savez, np.savez_compressed), read bit for bit; and
hostile archives, refused with the file and the member named.

Each file goes through the fuzz target's replay driver (build/fuzz/replay_npz with
FUZZ_NPZ_REPORT set prints the id, the layout, the sizes and every value as float32 bits;
FUZZ_NPZ_NAME gives the file's name, which gives the image id). The target itself holds the
reader's allocations to what the file justifies and checks it against files it writes back."""
import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest

from conftest import fuzz_report
from vqa_files import reference_spatials

RNG = np.random.default_rng(11)


def read(path, name=None):
    """('refused', message) or (id, layout, width, height, boxes (K, 4), features (K, D))."""
    lines = fuzz_report("npz", path, FUZZ_NPZ_REPORT="1", FUZZ_NPZ_NAME=name or os.path.basename(str(path)))
    if lines[0].startswith("refused: "):
        return "refused", lines[0][len("refused: "):]
    image_id, layout, w, h, K, D = lines[0].split()
    K, D = int(K), int(D)

    def floats(line, shape):
        return np.array([int(t, 16) for t in line.split()], np.uint32).view(np.float32).reshape(shape)
    return image_id, layout, int(w), int(h), floats(lines[1], (K, 4)), floats(lines[2], (K, D))


def boxes(K, w, h):
    x1, y1 = RNG.uniform(0, w / 2, K), RNG.uniform(0, h / 2, K)
    return np.stack([x1, y1, x1 + RNG.uniform(1, w / 2, K), y1 + RNG.uniform(1, h / 2, K)], 1).astype(np.float32)


def vqa_arrays(K=7, D=2048, w=640, h=480):
    """OpenVQA's VQA-v2 file: x (D, K), bbox (K, 4), num_bbox, image_h, image_w."""
    feats = RNG.standard_normal((K, D)).astype(np.float32)
    return {"x": feats.T.copy(), "bbox": boxes(K, w, h), "num_bbox": K, "image_h": h, "image_w": w}, feats


def gqa_arrays(K=5, D=2048, w=500, h=333):
    """gqa_feat_preproc.py's file: x (K, D), bbox (K, 4), width, height."""
    feats = RNG.standard_normal((K, D)).astype(np.float32)
    return {"x": feats, "bbox": boxes(K, w, h), "width": w, "height": h}, feats


@pytest.mark.parametrize("compressed", [False, True], ids=["np.savez", "np.savez_compressed"])
def test_vqa_v2_file(tmp_path, compressed):
    arrays, feats = vqa_arrays()
    path = tmp_path / "COCO_val2014_000000262148.jpg.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    image_id, layout, w, h, b, f = read(path)
    assert (image_id, layout, w, h) == ("262148", "VQA", 640, 480)
    assert np.array_equal(b.view(np.uint32), arrays["bbox"].view(np.uint32))
    assert np.array_equal(f.view(np.uint32), feats.view(np.uint32))  # x transposed back: (K, D)
    # what the store computes from them is OpenVQA's box feature times the image size
    assert np.isfinite(reference_spatials(b, w, h)).all()


@pytest.mark.parametrize("compressed", [False, True], ids=["np.savez", "np.savez_compressed"])
def test_gqa_file(tmp_path, compressed):
    arrays, feats = gqa_arrays()
    for name in ("n161313.npz", "2354786.npz"):
        path = tmp_path / name
        (np.savez_compressed if compressed else np.savez)(path, **arrays)
        image_id, layout, w, h, b, f = read(path)
        assert (image_id, layout, w, h) == (name[:-4], "GQA", 500, 333)
        assert np.array_equal(b.view(np.uint32), arrays["bbox"].view(np.uint32))
        assert np.array_equal(f.view(np.uint32), feats.view(np.uint32))


def test_other_members_are_never_read(tmp_path):
    """The feature extractors save more (class and attribute probabilities, a pickled info dict):
    skipped unread, so a pickle never runs."""
    arrays, feats = vqa_arrays(K=3, D=16)
    path = tmp_path / "COCO_test2015_000000000001.jpg.npz"
    np.savez_compressed(path, cls_prob=np.ones((3, 1601), np.float32), info={"objects_id": [1, 2, 3]}, **arrays)
    image_id, layout, *_, f = read(path)
    assert (image_id, layout) == ("1", "VQA") and np.array_equal(f, feats)


@pytest.mark.parametrize("name,image_id", [
    ("COCO_val2014_000000000042.jpg.npz", "42"), ("COCO_train2014_000000581929.npz", "581929"),
    ("COCO_test2015_000000000000.jpg.npz", "0"), ("n161313.npz", "n161313"), ("2354786.npz", "2354786"),
    ("img-7_b.extra.npz", "img-7_b"),
])
def test_image_ids_from_file_names(tmp_path, name, image_id):
    """As OpenVQA's loaders take them: VQA's str(int(name.split('_')[-1].split('.')[0])), GQA's
    name.split('.')[0]."""
    arrays, _ = gqa_arrays(K=1, D=3)
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    assert read(path, name)[0] == image_id


def test_file_names_that_give_no_id(tmp_path):
    arrays, _ = gqa_arrays(K=1, D=3)
    path = tmp_path / "f.npz"
    np.savez(path, **arrays)
    for name in ("COCO_val2014_x.jpg.npz", "COCO_val2014_.npz", "a b.npz", ".npz", "COCO_1234567890123456789.npz"):
        verdict, message = read(path, name)
        assert verdict == "refused" and message.startswith(name + ": the file name gives no image id"), message


# ---- hostile archives -------------------------------------------------------------------------

def zip_bytes(members, compressed=False):
    """members: {name: bytes} as a zip (fixed timestamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = z.compression
            z.writestr(info, data)
    return bytearray(out.getvalue())


def npy(arr):
    f = io.BytesIO()
    np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=True)
    return f.getvalue()


def gqa_members(**override):
    arrays, _ = gqa_arrays(K=2, D=4)
    arrays.update(override)
    return {k + ".npy": npy(v) for k, v in arrays.items()}


def entry(data, name):
    """(offset of the local header, offset of the central directory entry) of member name."""
    local = next(i for i in range(len(data)) if data[i:i + 4] == b"PK\x03\x04" and
                 data[i + 30:i + 30 + len(name)] == name.encode())
    central = next(i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02" and
                   data[i + 46:i + 46 + len(name)] == name.encode())
    return local, central


def patched(data, name, fields):
    """Set (where, struct format, value) fields of member name's local header ('L') and central
    directory entry ('C')."""
    data = bytearray(data)
    local, central = entry(data, name)
    for where, offset, fmt, value in fields:
        struct.pack_into(fmt, data, (local if where == "L" else central) + offset, value)
    return bytes(data)


def deflate_raw(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def bomb_member():
    """A stored zip whose x.npy member is a deflate stream of 64 MiB that declares 160 bytes."""
    members = gqa_members()
    data = zip_bytes(members)
    real = members["x.npy"]
    stream = deflate_raw(real + bytes(64 << 20))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:  # x.npy first, holding the stream as stored bytes, then the others
        for name, blob in [("x.npy", stream)] + [(k, v) for k, v in members.items() if k != "x.npy"]:
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), blob)
    data = out.getvalue()
    # now say x.npy is deflated and inflates to the real member's size and CRC
    return patched(data, "x.npy", [("L", 8, "<H", 8), ("C", 10, "<H", 8), ("L", 22, "<I", len(real)),
                                   ("C", 24, "<I", len(real)), ("L", 14, "<I", zlib.crc32(real)),
                                   ("C", 16, "<I", zlib.crc32(real))])


def twice(name):
    """A zip holding member name twice (zipfile warns, and writes it)."""
    import warnings
    members = gqa_members()
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as z:
        warnings.simplefilter("ignore")
        for key, blob in list(members.items()) + [(name, members[name])]:
            z.writestr(zipfile.ZipInfo(key, date_time=(1980, 1, 1, 0, 0, 0)), blob)
    return out.getvalue()


def zip64_end(data):
    """The archive with a zip64 end-of-central-directory record and locator, and the classic record
    saying 0xFFFF / 0xFFFFFFFF (as large archives have them)."""
    data = bytes(data)
    eocd = data.rfind(b"PK\x05\x06")
    n, cd_size, cd_off = struct.unpack_from("<HII", data, eocd + 10)
    z64 = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, n, n, cd_size, cd_off)
    locator = struct.pack("<IIQI", 0x07064b50, 0, eocd, 1)
    end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:eocd] + z64 + locator + end


def zip64_central(data, name):
    """Member name's central entry with its sizes and offset moved into a zip64 extra field."""
    data = bytearray(data)
    local, central = entry(data, name)
    csize, usize = struct.unpack_from("<II", data, central + 20)
    nlen, xlen = struct.unpack_from("<HH", data, central + 28)
    extra = struct.pack("<HHQQQ", 1, 24, usize, csize, local)
    struct.pack_into("<IIH", data, central + 20, 0xFFFFFFFF, 0xFFFFFFFF, nlen)
    struct.pack_into("<H", data, central + 30, xlen + len(extra))
    struct.pack_into("<I", data, central + 42, 0xFFFFFFFF)
    at = central + 46 + nlen + xlen
    data[at:at] = extra
    eocd = data.rfind(b"PK\x05\x06")
    size = struct.unpack_from("<I", data, eocd + 12)[0]
    struct.pack_into("<I", data, eocd + 12, size + len(extra))
    return bytes(data)


def test_zip64_records_are_read(tmp_path):
    members = gqa_members()
    for variant, data in (("end", zip64_end(zip_bytes(members))),
                          ("central", zip64_central(zip_bytes(members), "x.npy")),
                          ("both", zip64_end(zip64_central(zip_bytes(members, True), "bbox.npy")))):
        path = tmp_path / "n1.npz"
        path.write_bytes(data)
        got = read(path)
        assert got[0] == "n1" and got[1] == "GQA", (variant, got)
        assert np.array_equal(got[5], np.load(io.BytesIO(members["x.npy"]))), variant


HOSTILE = {
    # (the bytes, the message after "n1.npz: ")
    "not a zip": (lambda: b"\x93NUMPY" + bytes(100), "not an .npz file (no zip end-of-central-directory record)"),
    "cut": (lambda: bytes(zip_bytes(gqa_members()))[:-40], "not an .npz file"),
    "encrypted": (lambda: patched(zip_bytes(gqa_members()), "x.npy", [("L", 6, "<H", 1), ("C", 8, "<H", 1)]),
                  "member x.npy is encrypted"),
    "bzip2": (lambda: patched(zip_bytes(gqa_members()), "bbox.npy", [("L", 8, "<H", 12), ("C", 10, "<H", 12)]),
              "member bbox.npy is compressed with method 12 (np.savez stores, np.savez_compressed deflates: 0 or 8)"),
    "decompression bomb": (bomb_member, "member x.npy: inflates past its declared size (inflating stopped there) "
                           "(160 bytes declared, from "),
    "claims 1 GB from 1 KB": (lambda: patched(zip_bytes(gqa_members(), True), "x.npy", [("C", 24, "<I", 1 << 30)]),
                              "member x.npy: 1073741824 bytes inflated from "),
    "stored size disagrees": (lambda: patched(zip_bytes(gqa_members()), "x.npy", [("C", 24, "<I", 1000)]),
                              "member x.npy: 1000 bytes stored from 160: not possible"),
    "CRC": (lambda: patched(zip_bytes(gqa_members()), "width.npy", [("C", 16, "<I", 0)]),
            "member width.npy: CRC-32 "),
    "deflate data cut": (lambda: patched(zip_bytes(gqa_members(), True), "x.npy", [("C", 20, "<I", 20)]),
                         "member x.npy: ends before its deflate stream does"),
    "local header elsewhere": (lambda: patched(zip_bytes(gqa_members()), "x.npy", [("C", 42, "<I", 5)]),
                               "member x.npy: no local header at offset 5"),
    "member twice": (lambda: twice("x.npy"), "member x.npy appears twice"),
    "pickled x": (lambda: bytes(zip_bytes(gqa_members(x=np.array([{"a": 1}], dtype=object)))),
                  "member x.npy: dtype |O is not one of"),
    "float64 boxes": (lambda: bytes(zip_bytes(gqa_members(bbox=boxes(2, 500, 333).astype(np.float64)))),
                      "member bbox.npy: dtype float64 is not one of"),
    "x of other boxes": (lambda: bytes(zip_bytes(gqa_members(x=np.ones((3, 4), np.float32)))),
                         "member x.npy is not a float32 array (K, D) of the 2 boxes of bbox.npy and 1..65536 features"),
    "no boxes": (lambda: bytes(zip_bytes(gqa_members(x=np.ones((0, 4), np.float32), bbox=np.ones((0, 4), np.float32)))),
                 "member bbox.npy is not a float32 array (K, 4) of 1..1024 boxes"),
    "width 0": (lambda: bytes(zip_bytes(gqa_members(width=0))), "member width.npy is not one whole number in 1..1000000"),
    "width 1.5": (lambda: bytes(zip_bytes(gqa_members(width=np.float32(1.5)))),
                  "member width.npy is not one whole number in 1..1000000"),
    "height missing": (lambda: bytes(zip_bytes({k: v for k, v in gqa_members().items() if k != "height.npy"})),
                       "member height.npy is missing"),
    "NaN feature": (lambda: bytes(zip_bytes(gqa_members(x=np.array([[0, 1, 2, 3], [4, np.nan, 6, 7]], np.float32)))),
                    "image n1: features: NaN at box 1, value 1"),
    "box outside its image": (lambda: bytes(zip_bytes(gqa_members(bbox=np.array([[0, 0, 10, 10], [-3e38, 0, 3e38, 10]],
                                                                                 np.float32)))),
                              "image n1: boxes: box 1 [-"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_archive_is_refused(tmp_path, name):
    make, message = HOSTILE[name]
    path = tmp_path / "n1.npz"
    path.write_bytes(bytes(make()))
    verdict, got = read(path)
    assert verdict == "refused" and got.startswith("n1.npz: " + message), got
