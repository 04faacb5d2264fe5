"""Small files in exactly the real formats, for the feature-store and VQA tests.

- bottom-up-attention TSV (peteanderson80/bottom-up-attention, tools/generate_tsv.py):
  no header, tab-separated image_id, image_w, image_h, num_boxes, boxes, features, the
  last two base64 of float32 arrays; lines end in "\\r\\n" (Python's csv writer);
- the official VQA questions and annotations JSON (the format of GT-Vision-Lab/VQA's vqaTools);
- a reader of the feature store written from docs/STORE.md alone (not from the C code),
  and the reference's spatial features (tools/adaptive_detection_features_converter.py
  of jnhwkim/ban-vqa) computed in numpy.
"""
import base64
import json
import os
import struct

import numpy as np

from conftest import fixture_path

G2 = np.load(fixture_path("ban_ref_g2.npz"))
G2_JSON = json.load(open(fixture_path("ban_ref_g2.json")))
FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")


def b64(arr):
    return base64.b64encode(np.ascontiguousarray(arr, dtype="<f4").tobytes()).decode("ascii")


def tsv_fields(image_id, width, height, boxes, features):
    """The six fields of one record, as strings."""
    return [str(image_id), str(width), str(height), str(len(boxes)), b64(boxes), b64(features)]


def tsv_line(fields, eol="\r\n"):
    return "\t".join(fields) + eol


def write_tsv(path, records, eol="\r\n"):
    """records: lists of six field strings (see tsv_fields), or raw strings written as they are."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        for r in records:
            f.write(r if isinstance(r, str) else tsv_line(r, eol))
    return str(path)


# image sizes of the golden records: powers of two, so that pixel boxes b * [W, H, W, H]
# are exact and the recomputed spatial features land within an ulp of the fixture's
GOLDEN_SIZES = [(1024, 512), (512, 1024), (1024, 1024), (2048, 1024), (512, 512), (1024, 2048)]
GOLDEN_IDS = [458752, 262148, 9, 581929, 1 << 40, 131072]


def golden_record(i, image_id=None):
    """(image_id, W, H, pixel boxes, features) of the fixture's example i (real boxes only)."""
    n = G2_JSON["box_counts"][i]
    W, H = GOLDEN_SIZES[i]
    boxes = (G2["b"][i, :n, :4] * np.array([W, H, W, H], np.float32)).astype(np.float32)
    return (GOLDEN_IDS[i] if image_id is None else image_id), W, H, boxes, G2["v"][i, :n].astype(np.float32)


def golden_fields(i, image_id=None):
    return tsv_fields(*golden_record(i, image_id))


def golden_store(folder, name="val.store"):
    """The six golden images imported by build/ban into folder/name; its path."""
    from conftest import run_ban
    out = os.path.join(str(folder), name)
    run_ban("features", "import", "--tsv", write_tsv(os.path.join(str(folder), "golden.tsv"),
                                                     [golden_fields(i) for i in range(6)]), "--output", out)
    return out


def reference_spatials(boxes, width, height):
    """The reference converter's spatial features, float32 as numpy computes them."""
    boxes = np.asarray(boxes, np.float32)
    image_w, image_h = float(width), float(height)
    box_width = boxes[:, 2] - boxes[:, 0]
    box_height = boxes[:, 3] - boxes[:, 1]
    scaled_width = box_width / np.float32(image_w)
    scaled_height = box_height / np.float32(image_h)
    scaled_x = boxes[:, 0] / np.float32(image_w)
    scaled_y = boxes[:, 1] / np.float32(image_h)
    return np.stack([scaled_x, scaled_y, scaled_x + scaled_width, scaled_y + scaled_height, scaled_width,
                     scaled_height], 1).astype(np.float32)


def questions_json(questions, subtype="val2014"):
    """questions: (question_id, image_id, text) -> the official questions file's object."""
    return {
        "info": {"year": 2017, "version": "2.0", "description": "test file", "contributor": "ban.h tests",
                 "url": "", "date_created": "2017-04-26"},
        "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": subtype,
        "questions": [{"image_id": img, "question": text, "question_id": qid} for qid, img, text in questions],
        "license": {"url": "http://creativecommons.org/licenses/by/4.0/", "name": "Creative Commons Attribution 4.0"},
    }


def annotations_json(items, subtype="val2014"):
    """items: (question_id, image_id, question_type, answer_type, [10 answers]) -> the annotations object."""
    anns = []
    for qid, img, qtype, atype, answers in items:
        anns.append({
            "question_id": qid, "image_id": img, "question_type": qtype, "answer_type": atype,
            "multiple_choice_answer": max(set(answers), key=answers.count),
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(answers)],
        })
    return {"info": {}, "data_type": "mscoco", "data_subtype": subtype, "annotations": anns,
            "license": {}}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


# ---- the feature store, read from its documentation (docs/STORE.md) ----

HEADER = struct.Struct("<4sIIIQQQQQII")
ENTRY = struct.Struct("<QQIIII")
ENTRY_V1 = struct.Struct("<qQIIII")
ID_CHARS = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def id_order(image_id):
    """The store's order of ids: shorter first, then by bytes."""
    return (len(image_id), image_id.encode("ascii"))


def read_store(path):
    """{'version', 'feature_dim', 'n_boxes', 'max_boxes', 'images': {id (str): {...}}, 'order': [ids in index
    order]}, checking the layout rules of docs/STORE.md on the way (versions 2 and 1)."""
    buf = open(path, "rb").read()
    (magic, version, D, align, n_images, n_boxes, data_off, data_size, index_off, max_boxes,
     flags) = HEADER.unpack_from(buf, 0)
    assert magic == b"BANF" and version in (1, 2) and align == 64 and flags == 0
    assert data_off == 64 and index_off == data_off + data_size
    images, order = {}, []
    id_at = index_off + 32 * n_images
    for i in range(n_images):
        if version == 2:
            key, off, n, w, h, length = ENTRY.unpack_from(buf, index_off + 32 * i)
            assert key == id_at and 1 <= length <= 64 and buf[key + length] == 0
            raw = buf[key:key + length]
            assert set(raw) <= ID_CHARS
            image_id = raw.decode("ascii")
            id_at = key + length + 1
        else:
            key, off, n, w, h, reserved = ENTRY_V1.unpack_from(buf, index_off + 32 * i)
            assert reserved == 0
            image_id = str(key)
        assert off % 64 == 0 and data_off <= off and off + n * (D + 10) * 4 <= index_off
        rec = np.frombuffer(buf, "<f4", n * (D + 10), off)
        images[image_id] = {"n": n, "width": w, "height": h, "offset": off,
                            "features": rec[:n * D].reshape(n, D),
                            "boxes": rec[n * D:n * (D + 4)].reshape(n, 4),
                            "spatials": rec[n * (D + 4):].reshape(n, 6)}
        order.append(image_id)
    assert id_at == len(buf)  # version 1: the index ends the file; version 2: the ids do
    key = (lambda x: int(x)) if version == 1 else id_order
    assert order == sorted(order, key=key) and len(set(order)) == len(order)
    assert sum(im["n"] for im in images.values()) == n_boxes
    assert max([im["n"] for im in images.values()] or [0]) == max_boxes
    return {"version": version, "feature_dim": D, "n_boxes": n_boxes, "max_boxes": max_boxes, "images": images,
            "order": order, "index_offset": index_off, "size": len(buf)}


def write_store(path, records, D, version=2):
    """A store written from docs/STORE.md: records are (image_id, width, height, boxes (n, 4),
    features (n, D)) in data order; ids are strings (version 2) or ints (version 1, as the
    first release wrote them)."""
    data, entries = b"", []
    for image_id, w, h, boxes, feats in records:
        boxes = np.asarray(boxes, np.float32)
        rec = (np.asarray(feats, "<f4").tobytes() + boxes.astype("<f4").tobytes() +
               reference_spatials(boxes, w, h).astype("<f4").tobytes())
        entries.append((image_id, 64 + len(data), len(boxes), w, h))
        data += rec + b"\0" * (-len(rec) % 64)
    index_offset = 64 + len(data)
    if version == 1:
        entries.sort()
        index, ids = b"".join(ENTRY_V1.pack(i, o, n, w, h, 0) for i, o, n, w, h in entries), b""
    else:
        entries.sort(key=lambda e: id_order(e[0]))
        index, ids = b"", b""
        for image_id, o, n, w, h in entries:
            raw = image_id.encode("ascii")
            index += ENTRY.pack(index_offset + 32 * len(entries) + len(ids), o, n, w, h, len(raw))
            ids += raw + b"\0"
    counts = [len(r[3]) for r in records]
    header = HEADER.pack(b"BANF", version, D, 64, len(entries), sum(counts), 64, len(data), index_offset,
                         max(counts or [0]), 0)
    with open(path, "wb") as f:
        f.write(header + data + index + ids)
    return str(path)


def write_store_v1(path, records, D):
    """A version-1 store (docs/STORE.md, "Version 1"): ids are ints."""
    return write_store(path, records, D, version=1)


def leftovers(folder, keep=()):
    """Files in folder other than those named in keep (temporary files left behind)."""
    return sorted(set(os.listdir(folder)) - set(keep))
