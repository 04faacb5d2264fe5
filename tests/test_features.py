"""ban features import / info: bottom-up-attention TSV files -> the feature store.

The expected values come from the fixture (features, boxes), from the reference
converter's formula in numpy (spatial features) and from the store's documentation (the
layout, read by tests/vqa_files.py), never from the code under test."""
import os
import struct

import numpy as np
import pytest

from conftest import run_ban
from vqa_files import (G2, G2_JSON, GOLDEN_IDS, b64, golden_fields, golden_record, leftovers, read_store,
                       reference_spatials, tsv_fields, tsv_line, write_store, write_store_v1, write_tsv)


def import_store(tmp_path, *files, extra=(), check=True, name="feat.store"):
    out = tmp_path / name
    args = ["features", "import", "--tsv"] + [str(f) for f in files] + ["--output", str(out)] + list(extra)
    return out, run_ban(*args, check=check)


def test_golden_records_round_trip(tmp_path):
    """Six golden records over two files (\\r\\n and \\n line ends, a blank line): every float
    comes back bit for bit, the spatial features are the reference converter's."""
    a = write_tsv(tmp_path / "karpathy_val.tsv", [golden_fields(i) for i in (3, 0, 4)])
    b = write_tsv(tmp_path / "karpathy_train.tsv.0", [golden_fields(i) for i in (1, 5)] + ["\n"] + [golden_fields(2)],
                  eol="\n")
    out, proc = import_store(tmp_path, a, b)
    assert "imported 6 images (114 boxes of 40 floats)" in proc.stderr
    st = read_store(out)
    assert st["feature_dim"] == 40 and st["n_boxes"] == sum(G2_JSON["box_counts"]) and st["max_boxes"] == 24
    assert st["version"] == 2 and st["order"] == [str(i) for i in sorted(GOLDEN_IDS)]  # numeric ids in numeric order
    for i in range(6):
        image_id, W, H, boxes, feats = golden_record(i)
        im = st["images"][str(image_id)]
        n = G2_JSON["box_counts"][i]
        assert (im["n"], im["width"], im["height"]) == (n, W, H)
        assert np.array_equal(im["features"], G2["v"][i, :n])
        assert np.array_equal(im["boxes"], boxes)
        expected = reference_spatials(boxes, W, H)
        assert np.array_equal(im["spatials"].view(np.uint32), expected.view(np.uint32))  # bit for bit
        assert np.abs(im["spatials"] - G2["b"][i, :n]).max() <= 1e-7  # and the fixture's, to an ulp
    info = run_ban("features", "info", out).stdout
    assert "images:           6\n" in info
    assert "boxes:            114 (14 to 24 an image, mean 19.0)" in info
    assert "feature size:     40 floats" in info
    assert "image ids:        9 to %d" % (1 << 40) in info
    assert "10-19           4" in info and "20-29           2" in info


def test_spatial_features_follow_the_reference_order_of_operations(tmp_path):
    """x2 is x1/W + (x2-x1)/W in float32, as the reference computes it, not x2/W."""
    rng = np.random.default_rng(7)
    W, H = 640, 427  # not powers of two: the order of operations shows in the last bits
    xy = rng.random((50, 2), dtype=np.float32) * np.float32(400)
    wh = rng.random((50, 2), dtype=np.float32) * np.float32(200) + np.float32(1)
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    feats = rng.random((50, 8), dtype=np.float32)
    out, _ = import_store(tmp_path, write_tsv(tmp_path / "a.tsv", [tsv_fields(5, W, H, boxes, feats)]))
    got = read_store(out)["images"]["5"]["spatials"]
    expected = reference_spatials(boxes, W, H)
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))
    naive = (boxes[:, 2] / np.float32(W)).astype(np.float32)
    assert not np.array_equal(naive, expected[:, 2])  # the test can tell the two formulas apart


def test_fixed_36_boxes_and_image_id_list(tmp_path):
    rng = np.random.default_rng(1)
    recs = []
    for image_id in range(1, 9):
        boxes = np.tile(np.array([[0, 0, 10, 10]], np.float32), (36, 1))
        recs.append(tsv_fields(image_id, 100, 80, boxes, rng.random((36, 16), dtype=np.float32)))
    a = write_tsv(tmp_path / "trainval_36.tsv", recs)
    ids = tmp_path / "ids.txt"
    ids.write_text("# val images\n2\n4\n\n6\n999\n")
    out, proc = import_store(tmp_path, a, extra=["--image-ids", ids])
    st = read_store(out)
    assert st["order"] == ["2", "4", "6"] and st["max_boxes"] == 36
    assert "5 images not listed in %s were left out" % ids in proc.stderr
    assert "1 of the 4 image ids of %s are in none of the TSV files (e.g. 999)" % ids in proc.stderr
    info = run_ban("features", "info", out).stdout
    assert "36           3" in info and "(36 to 36 an image" in info


def test_feature_dim_option_must_agree(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", [golden_fields(0)])
    out, proc = import_store(tmp_path, a, extra=["--feature-dim", "32"], check=False)
    assert proc.returncode == 1
    assert "a.tsv:1: image 458752: features: 960 float32 values, expected num_boxes x feature size = 24 x 32 = 768" in proc.stderr
    assert leftovers(tmp_path) == ["a.tsv"]


def bad_line_cases():
    """(name, fields of the bad record or a raw line, message expected after 'FILE:2: '); once the image
    id is read, the message names it"""
    image_id, W, H, boxes, feats = golden_record(1)
    n = len(boxes)
    good = tsv_fields(image_id, W, H, boxes, feats)
    im = "image %d: " % image_id

    def edit(k, value):
        f = list(good)
        f[k] = value
        return f

    def edit_box(i, values):
        b = boxes.copy()
        b[i] = values
        return edit(4, b64(b))

    nan = feats.copy()
    nan[3, 7] = np.nan
    inf = boxes.copy()
    inf[2, 1] = np.inf
    ninf = feats.copy()
    ninf[0, 0] = -np.inf
    box_rule = "is not a box of the %d x %d image (x1 <= x2 within [%d, %d], y1 <= y2 within [%d, %d])" % (
        W, H, -W, 2 * W, -H, 2 * H)
    return [
        ("bad base64 character", edit(5, good[5][:100] + "*" + good[5][101:]),
         im + "features: character '*' (byte 0x2a) at 100 is not base64"),
        ("non-ascii byte", edit(4, good[4][:8] + "\u00e9" + good[4][10:]), im + "boxes: byte 0xc3 at 8 is not base64"),
        ("padding in the middle", edit(5, good[5][:40] + "=AAA" + good[5][44:]),
         im + "features: base64 padding '=' at character 40, before the end"),
        ("base64 cut", edit(5, good[5][:-3]), im + "features: %d base64 characters, not a multiple of 4"
         % (len(good[5]) - 3)),
        ("padding bits", edit(4, good[4][:-3] + "B=="),
         im + "boxes: bad base64 padding: the unused bits of the last group are not zero"),
        ("float count", edit(5, b64(feats[:-1])),
         im + "features: %d float32 values, expected num_boxes x feature size = %d x 40 = %d"
         % ((n - 1) * 40, n, n * 40)),
        ("box count", edit(4, b64(boxes[:-1])),
         im + "boxes: %d bytes = %d float32 values, expected num_boxes x 4 = %d" % ((n - 1) * 16, (n - 1) * 4, n * 4)),
        ("num_boxes 0", edit(3, "0"), im + "num_boxes '0' is not a whole number in 1..1024"),
        ("num_boxes above the limit", edit(3, "1025"), im + "num_boxes '1025' is not a whole number in 1..1024"),
        ("num_boxes not a number", edit(3, "19.0"), im + "num_boxes '19.0' is not a whole number"),
        ("NaN feature", edit(5, b64(nan)), im + "features: NaN at box 3, value 7"),
        ("Inf box", edit(4, b64(inf)), im + "boxes: Inf at box 2, coordinate 1"),
        ("-Inf feature", edit(5, b64(ninf)), im + "features: -Inf at box 0, value 0"),
        # finite, but its spatial features would be infinite (x2 - x1 overflows float32)
        ("box of +-3e38", edit_box(4, [-3e38, 0, 3e38, 10]),
         im + "boxes: box 4 [-{0}, 0, {0}, 10] ".format("%.9g" % np.float32(3e38)) + box_rule),
        ("box far right of the image", edit_box(0, [0, 0, 2 * W + 1, 10]),
         im + "boxes: box 0 [0, 0, %d, 10] %s" % (2 * W + 1, box_rule)),
        ("box above the image", edit_box(5, [0, -H - 1, 10, 10]),
         im + "boxes: box 5 [0, %d, 10, 10] %s" % (-H - 1, box_rule)),
        ("x2 before x1", edit_box(1, [20, 0, 10, 10]), im + "boxes: box 1 [20, 0, 10, 10] " + box_rule),
        ("image id", edit(0, "12a"), "image_id '12a' is not a whole number"),
        ("negative image id", edit(0, "-5"), "image_id '-5' is not a whole number"),
        ("image width 0", edit(1, "0"), im + "image_w '0' is not a whole number in 1..1000000"),
        ("five fields", "\t".join(good[:5]) + "\r\n", "5 tab-separated fields, expected 6"),
        ("seven fields", "\t".join(good + ["x"]) + "\r\n", "7 tab-separated fields, expected 6"),
        ("duplicated image id", tsv_fields(GOLDEN_IDS[0], W, H, boxes, feats),
         "image %d appears twice (first at {a}:1)" % GOLDEN_IDS[0]),
    ]


CASES = bad_line_cases()


@pytest.mark.parametrize("name,bad,message", CASES, ids=[c[0] for c in CASES])
def test_bad_record_is_an_error_naming_file_and_line(tmp_path, name, bad, message):
    path = tmp_path / "a.tsv"
    write_tsv(path, [golden_fields(0), bad, golden_fields(2)])
    out, proc = import_store(tmp_path, path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "ban: error: %s:2: %s" % (path, message.format(a=path)) in proc.stderr, proc.stderr
    assert not out.exists() and leftovers(tmp_path) == ["a.tsv"]  # nothing left behind


def test_truncated_last_line(tmp_path):
    """A file cut in the middle of a record (a download that stopped) names the last line."""
    path = tmp_path / "a.tsv"
    full = tsv_line(golden_fields(0)) + tsv_line(golden_fields(1))
    for cut in (len(full) - 1000, len(full) - 1001, len(full) - 1002, len(full) - 1003):
        path.write_text(full[:cut])
        out, proc = import_store(tmp_path, path, check=False)
        assert proc.returncode == 1
        assert "%s:2: image %d: features: " % (path, GOLDEN_IDS[1]) in proc.stderr
        assert "the file ends in the middle of this line: truncated?" in proc.stderr
    path.write_text(full[:len(tsv_line(golden_fields(0))) + 30])  # cut inside the boxes
    out, proc = import_store(tmp_path, path, check=False)
    assert "%s:2: 5 tab-separated fields, expected 6" % path in proc.stderr and "truncated?" in proc.stderr
    assert leftovers(tmp_path) == ["a.tsv"]


def test_missing_final_newline_is_accepted(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text(tsv_line(golden_fields(0)) + tsv_line(golden_fields(1))[:-2])
    out, _ = import_store(tmp_path, path)
    assert len(read_store(out)["order"]) == 2


def test_duplicated_image_across_files(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", [golden_fields(0), golden_fields(1)])
    b = write_tsv(tmp_path / "b.tsv", [golden_fields(2), golden_fields(3, image_id=GOLDEN_IDS[1])])
    out, proc = import_store(tmp_path, a, b, check=False)
    assert proc.returncode == 1
    assert "ban: error: %s:2: image %d appears twice (first at %s:2)" % (b, GOLDEN_IDS[1], a) in proc.stderr
    assert not out.exists()


def test_skip_bad_reports_count_and_lines(tmp_path):
    image_id, W, H, boxes, feats = golden_record(1)
    nan = feats.copy()
    nan[0, 0] = np.nan
    a = write_tsv(tmp_path / "a.tsv", [golden_fields(0), tsv_fields(77, W, H, boxes, nan), golden_fields(1),
                                       "7\t640\t480\n", golden_fields(2)])
    b = write_tsv(tmp_path / "b.tsv", [golden_fields(3, image_id=GOLDEN_IDS[0]), golden_fields(4)])
    out, proc = import_store(tmp_path, a, b, extra=["--skip-bad"])
    assert "skipped 3 bad records: %s:2, %s:4, %s:1\n" % (a, a, b) in proc.stderr
    assert "ban: warning: %s:2: image 77: features: NaN at box 0, value 0; record skipped" % a in proc.stderr
    assert "ban: warning: %s:1: image %d appears twice (first at %s:1); record skipped" % (b, GOLDEN_IDS[0], a) \
        in proc.stderr
    st = read_store(out)
    assert st["order"] == [str(i) for i in sorted(GOLDEN_IDS[i] for i in (0, 1, 2, 4))]
    # the first occurrence of the duplicated id is the one kept
    assert np.array_equal(st["images"][str(GOLDEN_IDS[0])]["features"], G2["v"][0, :24])


def test_nothing_imported_writes_nothing(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", ["1\t2\n", "3\t4\n"])
    out, proc = import_store(tmp_path, a, extra=["--skip-bad"], check=False)
    assert proc.returncode == 1 and "no image imported" in proc.stderr
    assert leftovers(tmp_path) == ["a.tsv"]


def test_usage_and_io_errors(tmp_path):
    a = write_tsv(tmp_path / "a.tsv", [golden_fields(0)])
    assert run_ban("features", check=False).returncode == 2
    assert run_ban("features", "import", "--tsv", a, check=False).returncode == 2
    assert run_ban("features", "import", "--tsv", a, "--output", tmp_path / "x", "--bogus", check=False).returncode == 2
    proc = run_ban("features", "import", "--tsv", tmp_path / "none.tsv", "--output", tmp_path / "x", check=False)
    assert proc.returncode == 1 and "none.tsv: cannot open" in proc.stderr
    proc = run_ban("features", "import", "--tsv", a, "--output", tmp_path / "no" / "such" / "dir.store", check=False)
    assert proc.returncode == 1 and "no/such/dir.store: cannot create: No such file or directory" in proc.stderr
    ids = tmp_path / "ids.txt"
    ids.write_text("12\nfoo\n")
    proc = run_ban("features", "import", "--tsv", a, "--output", tmp_path / "x", "--image-ids", ids, check=False)
    assert proc.returncode == 1 and "%s:2: 'foo' is not an image id" % ids in proc.stderr


# ---- hostile store files: every field checked on open ----

@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("store")
    out, _ = import_store(tmp, write_tsv(tmp / "a.tsv", [golden_fields(i) for i in range(6)]))
    return out.read_bytes()


def patched(data, edits):
    buf = bytearray(data)
    for at, fmt, value in edits:
        struct.pack_into(fmt, buf, at, value)
    return bytes(buf)


def hostile_cases(data):
    index = struct.unpack_from("<Q", data, 48)[0]
    n_images = struct.unpack_from("<Q", data, 16)[0]
    e0, e1, e2 = index, index + 32, index + 64
    off0, off1 = struct.unpack_from("<Q", data, e0 + 8)[0], struct.unpack_from("<Q", data, e1 + 8)[0]
    id0 = struct.unpack_from("<Q", data, e0)[0]
    id1, id2 = struct.unpack_from("<Q", data, e1)[0], struct.unpack_from("<Q", data, e2)[0]
    assert id0 == index + 32 * n_images and data[id1:id1 + 6] == b"131072" and data[id2:id2 + 6] == b"262148"
    return [
        ("magic", patched(data, [(0, "<4s", b"BANM")]), "not a feature store"),
        ("version", patched(data, [(4, "<I", 3)]), "version 3 (this build reads versions 1 and 2)"),
        ("feature size 0", patched(data, [(8, "<I", 0)]), "feature size 0 outside 1..65536"),
        ("alignment", patched(data, [(12, "<I", 32)]), "record alignment 32"),
        ("image count", patched(data, [(16, "<Q", 1 << 62)]), "index of 4611686018427387904 images"),
        ("data size", patched(data, [(40, "<Q", 1 << 63)]), "data section"),
        ("index offset", patched(data, [(48, "<Q", index - 64)]), "and their ids do not fit in the file"),
        ("max boxes", patched(data, [(56, "<I", 5000)]), "5000 boxes per image at most"),
        ("entry offset beyond", patched(data, [(e0 + 8, "<Q", 1 << 62)]), "runs outside the data section"),
        ("entry misaligned", patched(data, [(e0 + 8, "<Q", off0 + 4)]), "misaligned"),
        ("overlap", patched(data, [(e1 + 8, "<Q", off0)]), "overlap"),
        ("repeated id", patched(data, [(id2, "<6s", b"131072")]), "image id 131072 after 131072 (the index must "
         "be sorted"),
        ("unsorted ids", patched(data, [(id2, "<6s", b"131071")]), "image id 131071 after 131072"),
        ("zero boxes", patched(data, [(e0 + 16, "<I", 0)]), "image 9 (index offset %d): 0 boxes outside" % e0),
        ("box total", patched(data, [(24, "<Q", 7)]), "the header counts 7 boxes"),
        ("width 0", patched(data, [(e0 + 20, "<I", 0)]), "size 0 x"),
        ("id length", patched(data, [(e0 + 28, "<I", 2)]), "the id at offset %d is not 2 letters" % id0),
        ("id length 0", patched(data, [(e0 + 28, "<I", 0)]), "an id of 0 bytes"),
        ("id offset", patched(data, [(e1, "<Q", id1 + 1)]), "index entry 1 (offset %d): an id of 6 bytes at offset "
         "%d (ids of 1..64 bytes follow the index back to back, from offset %d)" % (e1, id1 + 1, id1)),
        ("id without its NUL", patched(data, [(id1 + 6, "<B", ord("0"))]), "the id at offset %d is not 6 letters" % id1),
        ("slash in an id", patched(data, [(id1 + 2, "<B", ord("/"))]), "the id at offset %d is not 6 letters" % id1),
        ("bytes after the ids", data + b"x", "the ids end at offset %d, but the file at %d" % (len(data), len(data) + 1)),
        ("truncated", data[:-1], "an id of 13 bytes at offset %d" % (len(data) - 14)),
        ("header only", data[:64], "runs outside the file"),
        ("empty", b"", "0 bytes cannot be a feature store"),
    ]


def test_hostile_stores_are_refused(tmp_path, store_bytes):
    good = tmp_path / "good.store"
    good.write_bytes(store_bytes)
    assert "images:           6" in run_ban("features", "info", good).stdout  # the unedited file opens
    for name, data, message in hostile_cases(store_bytes):
        path = tmp_path / "bad.store"
        path.write_bytes(data)
        proc = run_ban("features", "info", path, check=False)
        assert proc.returncode == 1, name
        assert proc.stderr.startswith("ban: error: %s: " % path) and message in proc.stderr, (name, proc.stderr)


def test_info_of_a_missing_store(tmp_path):
    proc = run_ban("features", "info", tmp_path / "nope.store", check=False)
    assert proc.returncode == 1 and "nope.store: cannot open" in proc.stderr
    assert not os.path.exists(tmp_path / "nope.store")


# ---- image ids: strings, numbers without leading zeros; stores of version 1 ----

def test_numeric_ids_lose_their_leading_zeros(tmp_path):
    """The TSV's id 000042 is image 42, as the VQA questions file names it (a number)."""
    image_id, W, H, boxes, feats = golden_record(2)
    out, _ = import_store(tmp_path, write_tsv(tmp_path / "a.tsv", [tsv_fields("000042", W, H, boxes, feats)]))
    assert read_store(out)["order"] == ["42"]
    assert "image ids:        42 to 42" in run_ban("features", "info", out).stdout


def test_string_ids_are_read_in_the_store_order(tmp_path):
    """A store written from docs/STORE.md alone, with GQA's ids: shorter first, then by bytes."""
    recs = [(iid, W, H, boxes, feats) for iid, (_, W, H, boxes, feats) in
            zip(["n161313", "2354786", "1", "n0", "10"], [golden_record(i) for i in range(5)])]
    path = write_store(tmp_path / "gqa.store", recs, 40)
    assert read_store(path)["order"] == ["1", "10", "n0", "2354786", "n161313"]
    info = run_ban("features", "info", path).stdout
    assert "format:           feature store version 2" in info and "image ids:        1 to n161313" in info


def test_version_1_stores_still_open(exported, tmp_path):
    """The first release's stores (ids as int64) open as they are: ids in decimal, the same
    answers from ban vqa as from a store imported now."""
    from vqa_files import questions_json, write_json
    recs = [golden_record(i) for i in range(6)]
    v1 = write_store_v1(tmp_path / "v1.store", [(i, W, H, b, f) for i, W, H, b, f in recs], 40)
    info = run_ban("features", "info", v1).stdout
    assert "format:           feature store version 1" in info
    assert "image ids:        9 to %d" % (1 << 40) in info
    questions = write_json(tmp_path / "q.json", questions_json(
        [(i, GOLDEN_IDS[i], q) for i, q in enumerate(G2_JSON["questions"])]))
    out = tmp_path / "r.json"
    run_ban("vqa", "--model", exported["g2"], "--features", v1, "--questions", questions, "--output", out)
    import json
    assert [r["answer"] for r in json.loads(out.read_text())] == G2_JSON["predicted_answers"]
    index = struct.unpack_from("<Q", open(v1, "rb").read(), 48)[0]
    for name, at, fmt, value, message in [
            ("unsorted", index + 32, "<q", 1 << 50, "image id 262148 after 1125899906842624 (the index must be sorted"),
            ("reserved", index + 28, "<I", 7, "reserved field is 7, not 0")]:
        data = bytearray(open(v1, "rb").read())
        struct.pack_into(fmt, data, at, value)
        bad = tmp_path / "bad.store"
        bad.write_bytes(bytes(data))
        proc = run_ban("features", "info", bad, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (name, proc.stderr)
