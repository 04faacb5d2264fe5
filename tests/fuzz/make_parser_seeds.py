#!/usr/bin/env python3
"""Write the seed corpora of the parser fuzz targets (tests/fuzz/corpus/<target>/):
tsv, store, questions, npz, markup, annotations and image.

    python3 tests/fuzz/make_parser_seeds.py [--check]

A sibling of make_seeds.py (the model, forward, tokenizer and npy seeds): the seeds are
committed; this script is how they were made, and --check says whether the committed files
still match it. Each corpus holds a few small valid files of the format, as the real data
has them (bottom-up-attention TSV lines, a feature store as docs/STORE.md lays it out, an
official VQA questions file, Flickr30k Entities sentences and annotations), and a few bad
ones, so that the fuzzer starts next to both sides of every check. Everything is written
by hand with the standard library and numpy (PNG with stored deflate blocks, BMP by
struct), so the bytes never depend on a library's version; the JPEG seeds are kept as
bytes (Pillow 9, libjpeg-turbo, quality 75/50).
"""
import base64
import json
import os
import struct
import sys
import zlib

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---- tsv: lines of bottom-up-attention TSV files --------------------------------------------

def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr, dtype=np.float32).tobytes()).decode()


def tsv_line(image_id, w, h, boxes, feats, eol="\r\n"):
    return "%s\t%s\t%s\t%s\t%s\t%s%s" % (image_id, w, h, len(boxes), b64(boxes), b64(feats), eol)


def tsv_seeds(rng):
    def record(image_id, n, D=5, w=640, h=480, eol="\r\n"):
        x1 = rng.uniform(0, w / 2, n)
        y1 = rng.uniform(0, h / 2, n)
        boxes = np.stack([x1, y1, x1 + rng.uniform(1, w / 2, n), y1 + rng.uniform(1, h / 2, n)], 1)
        return tsv_line(image_id, w, h, boxes, rng.standard_normal((n, D)), eol)

    nan = np.ones((2, 5), np.float32)
    nan[1, 3] = np.nan
    boxes2 = np.array([[0, 0, 10, 10], [5, 5, 20, 30]], np.float32)
    return {
        "golden_crlf.tsv": record(9, 3) + record(1 << 40, 2),
        "lf_blank_line.tsv": record(4, 2, eol="\n") + "\n" + record(11, 1, eol="\n"),
        "feature_size_changes.tsv": record(5, 2, D=5) + record(6, 2, D=3),
        "selected_out.tsv": record(10, 1) + record(17, 2),  # 10 and 17 are 3 modulo 7
        "cut_last_line.tsv": (record(2, 2) + record(3, 2))[:-40],
        "nan_feature.tsv": tsv_line(7, 100, 100, boxes2, nan),
        "bad_padding.tsv": "8\t100\t100\t1\t%s\tAB==\r\n" % b64(boxes2[:1]),
        "five_fields.tsv": "8\t100\t100\t1\t%s\r\n" % b64(boxes2[:1]),
        "zero_boxes.tsv": "8\t100\t100\t0\t\t\r\n",
        "not_base64.tsv": "8\t100\t100\t1\t%s\tAAAA*AAA\n" % b64(boxes2[:1]),
    }


# ---- store: feature stores (docs/STORE.md) ---------------------------------------------------

def spatials(boxes, w, h):
    b = boxes.astype(np.float32)
    W, H = np.float32(w), np.float32(h)
    bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    sw, sh, sx, sy = bw / W, bh / H, b[:, 0] / W, b[:, 1] / H
    return np.stack([sx, sy, sx + sw, sy + sh, sw, sh], 1).astype(np.float32)


def id_order(image_id):
    """docs/STORE.md: shorter ids first, then by bytes (version 1: numerically)."""
    return (len(image_id), image_id) if isinstance(image_id, str) else image_id


def store_bytes(records, D, index_order=None, overrides=None, version=2):
    """records: [(image_id, w, h, features (n, D), boxes (n, 4))] in data order; ids are strings
    (version 2) or ints (version 1)."""
    data, entries, offset = b"", [], 64
    for image_id, w, h, feats, boxes in records:
        rec = feats.astype("<f4").tobytes() + boxes.astype("<f4").tobytes() + spatials(boxes, w, h).tobytes()
        rec += b"\0" * (-len(rec) % 64)
        entries.append((image_id, offset, len(boxes), w, h))
        data += rec
        offset += len(rec)
    entries.sort(key=lambda e: id_order(e[0]))
    if index_order:
        entries = [entries[i] for i in index_order]
    index_offset = 64 + len(data)
    if version == 1:
        index, ids = b"".join(struct.pack("<qQIIII", i, o, n, w, h, 0) for i, o, n, w, h in entries), b""
    else:
        index, ids, at = b"", b"", index_offset + 32 * len(entries)
        for image_id, o, n, w, h in entries:
            raw = image_id.encode("ascii")
            index += struct.pack("<QQIIII", at + len(ids), o, n, w, h, len(raw))
            ids += raw + b"\0"
    n_boxes = sum(len(r[4]) for r in records)
    max_boxes = max([len(r[4]) for r in records] or [0])
    fields = dict(magic=b"BANF", version=version, D=D, align=64, n_images=len(entries), n_boxes=n_boxes,
                  data_offset=64, data_size=len(data), index_offset=index_offset, max_boxes=max_boxes, flags=0)
    fields.update(overrides or {})
    header = struct.pack("<4sIIIQQQQQII", *[fields[k] for k in ("magic", "version", "D", "align", "n_images",
                                                                "n_boxes", "data_offset", "data_size",
                                                                "index_offset", "max_boxes", "flags")])
    return header + data + index + ids


def store_seeds(rng):
    def rec(image_id, n, D, w=500, h=375):
        x1 = rng.uniform(0, w / 2, n).astype(np.float32)
        y1 = rng.uniform(0, h / 2, n).astype(np.float32)
        boxes = np.stack([x1, y1, x1 + 20, y1 + 30], 1).astype(np.float32)
        return (image_id, w, h, rng.standard_normal((n, D)).astype(np.float32), boxes)

    three = [rec("42", 3, 4), rec("7", 1, 4), rec(str(1 << 40), 2, 4, 1, 1000000)]
    good = store_bytes(three, 4)
    # two images, the second entry pointing at the first image's record
    two = bytearray(store_bytes([rec("1", 2, 4), rec("2", 2, 4)], 4))
    index_offset = struct.unpack_from("<Q", two, 48)[0]
    struct.pack_into("<Q", two, index_offset + 32 + 8, 64)
    overlapping = bytes(two)
    # a box the writer refuses (x2 far right of the image): the reader does not read the floats
    wide = rec("9", 2, 4)
    wide[4][1, 2] = 5000
    v1_three = [(int(i), w, h, f, b) for i, w, h, f, b in three]
    return {
        "three_images.store": good,
        "gqa_ids.store": store_bytes([rec("2354786", 2, 3), rec("n161313", 3, 3), rec("1", 1, 3),
                                      rec("n0", 1, 3)], 3),
        "one_image_d1.store": store_bytes([rec("-5", 2, 1)], 1),
        "empty.store": store_bytes([], 8),
        "unsorted_index.store": store_bytes(three, 4, index_order=[1, 0, 2]),
        "overlapping_records.store": overlapping,
        "counts_disagree.store": store_bytes(three, 4, overrides={"n_boxes": 5}),
        "cut_ids.store": good[:-3],
        "box_outside_the_image.store": store_bytes([wide, rec("10", 1, 4)], 4),
        "v1_three_images.store": store_bytes(v1_three, 4, version=1),
        "v1_negative_id.store": store_bytes([rec(-5, 2, 1), rec(3, 1, 1)], 1, version=1),
        "v1_unsorted_index.store": store_bytes(v1_three, 4, index_order=[1, 0, 2], version=1),
        "v1_cut_index.store": store_bytes(v1_three, 4, version=1)[:-20],
    }


# ---- questions: official VQA questions files -------------------------------------------------

def questions_seeds():
    def doc(questions):
        return json.dumps({"info": {"description": "fuzz seed"}, "task_type": "Open-Ended", "data_type": "mscoco",
                           "data_subtype": "val2014", "questions": questions}, ensure_ascii=False).encode("utf-8")

    official = [{"image_id": 262148, "question": "Where is he looking?", "question_id": 262148000},
                {"image_id": 262148, "question": "What are the people in the background doing?",
                 "question_id": 262148001},
                {"image_id": 393225, "question": "Is the bowl full?", "question_id": 393225000}]
    return {
        "official.json": doc(official),
        "unicode_escapes.json": b'{"questions": [{"question_id": 1, "image_id": 2, "question": '
                                b'"caf\\u00e9 \\ud83d\\ude00 \\"quoted\\" \\u0000after nul"}]}',
        "extreme_ids.json": b'{"questions": [{"question_id": 9007199254740992, "image_id": -9007199254740992, '
                            b'"question": ""}, {"question_id": 0, "image_id": 1e3, "question": "x"}]}',
        "fractional_id.json": b'{"questions": [{"question_id": 1.5, "image_id": 2, "question": "what?"}]}',
        "missing_question.json": b'{"questions": [{"question_id": 1, "image_id": 2}]}',
        "not_object.json": b'{"questions": [[1, 2, "what?"]]}',
        "empty_array.json": b'{"questions": []}',
        "malformed.json": b'{"questions": [{"question_id": 1,\n  "image_id": 2, "question": "what?"}',
        "nul_byte.json": b'{"questions": [{"question_id": 1, "image_id": 2, "question": "wh\0at?"}]}',
        "top_level_array.json": b'[{"question_id": 1, "image_id": 2, "question": "what?"}]',
        # ids beyond 2^53 held exactly (a double would make them collide), and beyond int64 refused
        "ids_beyond_2p53.json": b'{"questions": [{"question_id": 9007199254740993, "image_id": 9223372036854775807, '
                                b'"question": "a?"}, {"question_id": 9007199254740992, "image_id": '
                                b'-9223372036854775808, "question": "b?"}]}',
        "id_beyond_int64.json": b'{"questions": [{"question_id": 9223372036854775808, "image_id": 1, "question": "a"}]}',
        "escapes.json": b'{"questions": [{"question_id": 1, "image_id": 2, "question": '
                        b'"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\/ \\b\\f\\n\\r\\t"}], '
                        b'"lone": "\\ud800\\n", "k\\u0071": [1e5, -0.5E-3, true, false, null, {}]}',
        "lone_surrogate_question.json": b'{"questions": [{"question_id": 1, "image_id": 2, "question": "\\udc00"}]}',
        "junk_key_first.json": b'{"junk": [0, 0, 0, [[], {"a": [0]}]], "questions": [{"question_id": 5, '
                               b'"image_id": 6, "question": "why?", "extra": {"x": [1, 2]}}]}',
        "duplicate_field.json": b'{"questions": [{"question_id": 1, "question_id": 2, "image_id": 2, "question": "a"}]}',
        "two_questions_arrays.json": b'{"questions": [], "questions": []}',
        "deep.json": b'{"junk": ' + b"[" * 1001 + b"]" * 1001 + b', "questions": []}',
        # GQA: questions by id, string image ids, optional answers, other keys skipped
        "gqa_testdev.json": json.dumps({
            "20968981": {"semantic": [{"operation": "select", "dependencies": [], "argument": "bag (3057)"}],
                         "entailed": ["20968982"], "equivalent": ["20968981"], "question": "Is the bag on the left?",
                         "imageId": "n161313", "isBalanced": True, "groups": {"global": None, "local": "13-bag_left"},
                         "answer": "yes", "semanticStr": "select: bag (3057)", "annotations": {"answer": {},
                         "question": {"2": "3057"}, "fullAnswer": {}}, "types": {"detailed": "positionVerify",
                         "semantic": "rel", "structural": "verify"}, "fullAnswer": "Yes, the bag is on the left."},
            "05451384": {"question": "What color is the car?", "imageId": "2354786", "answer": "red",
                         "types": {"structural": "query"}},
            "201640614": {"question": "Who wears the hat?", "imageId": "2354786", "answer": None}},
            indent=1).encode(),
        "gqa_test_no_answers.json": b'{"1": {"imageId": "n1", "question": "q"}, "2": {"imageId": "n1", "question": "r"}}',
        "gqa_bad_image_id.json": b'{"1": {"imageId": "../etc", "question": "q"}}',
        "gqa_numeric_image_id.json": b'{"1": {"imageId": 2354786, "question": "q"}}',
        "gqa_bad_question_id.json": b'{"a b": {"imageId": "n1", "question": "q"}}',
        "gqa_duplicate_id.json": b'{"7": {"imageId": "n1", "question": "q"}, "7": {"imageId": "n2", "question": "r"}}',
        "empty_object.json": b'{}',
    }


# ---- npz: OpenVQA's per-image feature files -----------------------------------------------------

def npz_bytes(arrays, compressed=False):
    """An .npz as np.savez (stored) or np.savez_compressed (deflated) writes it (zip64 sizes in the
    local headers, as numpy forces them), with a fixed timestamp so that the bytes do not change."""
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = z.compression
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=True)
    return out.getvalue()


def npz_seeds(rng):
    def boxes(K, w, h):
        x1, y1 = rng.uniform(0, w / 2, K), rng.uniform(0, h / 2, K)
        return np.stack([x1, y1, x1 + rng.uniform(1, w / 2, K), y1 + rng.uniform(1, h / 2, K)], 1).astype(np.float32)

    vqa = {"x": rng.standard_normal((6, 3)).astype(np.float32), "bbox": boxes(3, 640, 480), "num_bbox": 3,
           "image_h": 480, "image_w": 640}
    gqa = {"x": rng.standard_normal((2, 5)).astype(np.float32), "bbox": boxes(2, 500, 333), "width": 500,
           "height": 333}
    stored = npz_bytes(vqa)
    encrypted = bytearray(stored)
    encrypted[6] |= 1  # the first local header's flags
    cd = stored.rfind(b"PK\x01\x02")
    encrypted[cd + 8] |= 1  # and its central directory entry's
    bzip2 = bytearray(npz_bytes(gqa))
    for at in (8, bzip2.rfind(b"PK\x01\x02") + 10):
        struct.pack_into("<H", bzip2, at, 12)
    return {
        "vqa_stored.npz": stored,
        "vqa_compressed.npz": npz_bytes(vqa, compressed=True),
        "vqa_extra_members.npz": npz_bytes(dict(vqa, cls_prob=np.ones((3, 4), np.float32),
                                                info={"image_id": 42, "objects_id": [1, 2]}), compressed=True),
        "gqa_stored.npz": npz_bytes(gqa),
        "gqa_compressed.npz": npz_bytes(gqa, compressed=True),
        "gqa_int32_sizes.npz": npz_bytes(dict(gqa, width=np.int32(500), height=np.int32(333))),
        "x_float64.npz": npz_bytes(dict(gqa, x=gqa["x"].astype(np.float64))),
        "box_outside.npz": npz_bytes(dict(gqa, bbox=np.array([[0, 0, 10, 10], [0, 0, 5000, 10]], np.float32))),
        "num_bbox_disagrees.npz": npz_bytes(dict(vqa, num_bbox=4)),
        "both_layouts.npz": npz_bytes(dict(vqa, width=640, height=480)),
        "no_bbox.npz": npz_bytes({k: v for k, v in gqa.items() if k != "bbox"}),
        "encrypted.npz": bytes(encrypted),
        "bzip2.npz": bytes(bzip2),
        "cut.npz": stored[:-30],
        "empty.npz": b"PK\x05\x06" + bytes(18),
    }


# ---- markup: Flickr30k Entities Sentences files --------------------------------------------------

def markup_seeds():
    lines = [
        "[/EN#18/people A man] in [/EN#19/clothing an orange hat] starring at [/EN#0/notvisual something] .",
        "[/EN#1/people A boy] , [/EN#2/people a girl] and [/EN#3/animals the dog] play on [/EN#4/scene the beach] .",
        "[/EN#5/people/bodyparts A child 's hand] holds [/EN#6/other a cup] [/EN#6/other a cup] .",
        "A  double  space and [/EN#7/other  an empty-headed phrase] .",
    ]
    return {
        "sentences_crlf.txt": "\r\n".join(lines).encode() + b"\r\n",
        "sentences_cr.txt": "\r".join(lines[:2]).encode(),
        "unicode.txt": "  [/EN#8/people Ein Mädchen] spielt\u00a0im [/EN#9/scene Schnee]\u3000.\n".encode(),
        "nested.txt": b"[/EN#1/people A man [/EN#2/clothing in a hat] ] .\n",
        "unclosed.txt": b"[/EN#1/people A man in a hat .\n",
        "no_chain.txt": b"[/EN#x/people A man] .\n[/people A man] .\n[/EN#1/people] x\n",
        "bad_utf8.txt": b"[/EN#1/people A m\xe4n] .\n",
    }


# ---- annotations: Flickr30k Entities Annotations files -----------------------------------------

def annotations_seeds():
    def box(x1, y1, x2, y2):
        return ("<bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax></bndbox>" % (x1, y1, x2, y2))

    official = ("<annotation>\n<filename>1000092795.jpg</filename>\n<size><width>500</width><height>375</height>"
                "<depth>3</depth></size>\n"
                "<object><name>18</name>%s</object>\n"
                "<object><name>19</name><name>20</name>%s</object>\n"
                "<object><name>21</name><nobndbox>1</nobndbox></object>\n"
                "<object><name>22</name><scene>1</scene></object>\n</annotation>\n") % (box(1, 2, 30, 40),
                                                                                          box(5, 6, 70, 80))
    return {
        "official.xml": official.encode(),
        "entity_and_underscores.xml": b'<?xml version="1.0"?>\n<!DOCTYPE annotation [<!ENTITY one "1">]>\n'
                                      b'<annotation><object><name> &one;_000 </name><bndbox><xmin>+1</xmin>'
                                      b'<ymin>0</ymin><xmax>1_0</xmax><ymax>-3</ymax></bndbox></object></annotation>',
        "missing_coordinate.xml": b"<annotation><object><name>1</name><bndbox><xmin>1</xmin><ymin>2</ymin>"
                                  b"<xmax>3</xmax></bndbox></object></annotation>",
        "bad_name.xml": b"<annotation><object><name>chain 1</name>" + box(1, 2, 3, 4).encode() +
                        b"</object></annotation>",
        "empty_first_bndbox.xml": b"<annotation><object><name>2</name><bndbox/>" + box(1, 2, 3, 4).encode() +
                                  b"</object></annotation>",
        "malformed.xml": b"<annotation><object><name>1</name></annotation>",
        "empty.xml": b"",
    }


# ---- image: PNG, JPEG and BMP ------------------------------------------------------------------

def png(w, h, color_type=2, depth=8, pixels=None, palette=None, cut=None):
    """A PNG with stored (uncompressed) deflate blocks; pixels raw bytes without filter bytes."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = (w * channels * depth + 7) // 8
    if pixels is None:
        pixels = bytes((i * 37 + 11) & 0xFF for i in range(row * h))
    raw = b"".join(b"\0" + pixels[y * row:(y + 1) * row] for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    out += chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b"")
    return out[:cut] if cut else out


def png_interlaced(w, h):
    """An 8-bit RGB PNG, Adam7-interlaced: the rows of each of the 7 passes, each with its filter byte."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
                           (0, 1, 1, 2)):
        pw, ph = (w - x0 + dx - 1) // dx if w > x0 else 0, (h - y0 + dy - 1) // dy if h > y0 else 0
        if pw and ph:
            raw += b"".join(b"\0" + bytes((x * 7 + y * 13) & 0xFF for x in range(3 * pw)) for y in range(ph))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def png_header_only(w, h):
    """The signature and an IHDR announcing w x h, nothing after it."""
    body = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + body +
            struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF))


def bmp(w, h, bpp=24, top_down=False, cut=None):
    row = (w * bpp + 31) // 32 * 4
    palette = b"".join(bytes([i, 255 - i, i // 2, 0]) for i in range(256)) if bpp == 8 else b""
    offset = 14 + 40 + len(palette)
    data = bytes((i * 29 + 7) & 0xFF for i in range(row * h))
    info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, 0, len(data), 2835, 2835,
                       256 if bpp == 8 else 0, 0)
    out = b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset) + info + palette + data
    return out[:cut] if cut else out


JPEGS = {  # 8 x 8 colour, 16 x 8 progressive, 8 x 8 4:2:0 at quality 50, 8 x 8 grey
    "colour.jpg": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0"
                  "Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
                  "MjIyMjL/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQA"
                  "AAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZ"
                  "WmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl"
                  "5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEE"
                  "BSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hp"
                  "anN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP0"
                  "9fb3+Pn6/9oADAMBAAIRAxEAPwBkJj0uWXbZwyJJLvJQZACvyAjLnOCAAQMnoBlaKKKzlThUpQqTV2++v53PXoQV+uuu73u1+iP/"
                  "2Q==",
    "progressive.jpg": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcp"
                       "LDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy"
                       "MjIyMjIyMjIyMjIyMjL/wgARCAAIABADASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/xAAVAQEBAAAAAAAAAAAA"
                       "AAAAAAAAA//aAAwDAQACEAMQAAABlYX/AP/EABcQAAMBAAAAAAAAAAAAAAAAAAEDEyH/2gAIAQEAAQUCKhS2/wD/xAAZEQAB"
                       "BQAAAAAAAAAAAAAAAAARAAFCUaH/2gAIAQMBAT8BEqGuv//EABoRAAEFAQAAAAAAAAAAAAAAAAMAARMhIvD/2gAIAQIBAT8B"
                       "A0o99S//xAAcEAACAQUBAAAAAAAAAAAAAAABAgAREyEicZH/2gAIAQEABj8CNAvBiK1vX0z/xAAcEAACAgIDAAAAAAAAAAAA"
                       "AAABEQAhMYFBcZH/2gAIAQEAAT8hcSzSYnoD0IAoMuGdVep//9oADAMBAAIAAwAAABD/AP/EABsRAQEAAQUAAAAAAAAAAAAA"
                       "AAERADFBUXGR/9oACAEDAQE/EER3onUE80kkOM//xAAZEQEBAAMBAAAAAAAAAAAAAAARAQAhQTH/2gAIAQIBAT8QStWj1njR"
                       "VjXfd5//xAAaEAABBQEAAAAAAAAAAAAAAAABABEhMUFR/9oACAEBAAE/EDxNSwIS4AdeG9RJTzjlhgbwLX//2Q==",
    "subsampled.jpg": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1R"
                      "V19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2Nj"
                      "Y2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAA"
                      "AgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6"
                      "Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXG"
                      "x8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREA"
                      "AgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5"
                      "OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPE"
                      "xcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwBEK2rviFGDNklRkYB6BSM55A6Dn6iiiipc"
                      "VKKlLVvvr+Z2U4r+vVr9D//Z",
    "grey.jpg": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAx"
                "NDQ0Hyc5PTgyPC4zNDL/wAALCAAIAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUF"
                "BAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVW"
                "V1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi"
                "4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ANGIPpepHUVWNYI7gQK1liJRG8uxMDCmVVJj2gYUdcMW3n//2Q==",
}


def image_seeds():
    out = {name: base64.b64decode(text) for name, text in JPEGS.items()}
    out.update({
        "rgb_5x3.png": png(5, 3),
        "grey16_2x2.png": png(2, 2, color_type=0, depth=16),
        "palette_4x2.png": png(4, 2, color_type=3, palette=bytes(range(48)), pixels=bytes([0, 5, 10, 15] * 2)),
        "rgba_3x3.png": png(3, 3, color_type=6),
        "rgb_7x5.bmp": bmp(7, 5),
        "palette_6x4.bmp": bmp(6, 4, bpp=8),
        "top_down_3x2_32bit.bmp": bmp(3, 2, bpp=32, top_down=True),
        "cut.png": png(6, 6, cut=60),
        "cut.bmp": bmp(7, 5, cut=100),
        "cut.jpg": base64.b64decode(JPEGS["colour.jpg"])[:600],
        "header_100000x100000.png": png_header_only(100000, 100000),
        "header_10000x5000.png": png_header_only(10000, 5000),
        "header_0x0.png": png_header_only(0, 0),
        "interlaced_5x9.png": png_interlaced(5, 9),
        "interlaced_1x1.png": png_interlaced(1, 1),
    })
    return out


def seeds():
    """{relative path: bytes}"""
    rng = np.random.default_rng(20240607)
    out = {}
    for folder, items in (("tsv", tsv_seeds(rng)), ("store", store_seeds(rng)), ("questions", questions_seeds()),
                          ("npz", npz_seeds(np.random.default_rng(20241201))),
                          ("markup", markup_seeds()), ("annotations", annotations_seeds()),
                          ("image", image_seeds())):
        for name, data in items.items():
            out["%s/%s" % (folder, name)] = data.encode("utf-8") if isinstance(data, str) else data
    return out


def main():
    from make_seeds import write_or_check
    return write_or_check(seeds(), __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
