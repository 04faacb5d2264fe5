#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

    python3 tests/fuzz/make_seeds.py [--check]

The seeds are committed; this script is how they were made, and --check says whether
the committed files still match it. Models are tiny (a few KB, random weights from a
fixed seed) but valid, so the fuzzer starts from files that load and run, and mutates
its way into every check of the loader, the forward pass and the tokenizer behind it;
fuzz_forward's seeds are calls on four of those models (see fuzz_forward.c for the layout).
The tensor list follows docs/FORMAT.md. corpus/model/vqa_words.ban carries the golden
model's vocabulary (tests/fixtures/ban_ref_g2.dictionary.pkl) plus words that need
Unicode lowering; fuzz_tokenizer tokenizes against it.
"""
import argparse
import io
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import banfile  # noqa: E402
import ban_export  # noqa: E402

EXTRA_WORDS = ["'s", "straße", "ὀδυσσεύς", "σοφός", "i̇stanbul", "ǆemal", "ﬁsh", "日本", "naïve", "don't"]


def model(rng, task="vqa", V=6, Ew=4, tables=1, Dv=5, D=4, k=3, G=2, A=3, O=2, F=8, S=2, L=4, masked=False,
          zero_rows=True, spatial=0, fp16=False, words=None, answers=True):
    """(metadata, tensors) of a tiny model; shapes as in docs/FORMAT.md."""
    meta = {"ban.task": task, "ban.vocab_size": V, "ban.embedding_dim": Ew, "ban.embedding_tables": tables,
            "ban.feature_dim": Dv, "ban.spatial_concat": spatial, "ban.hidden_dim": D, "ban.attention_rank": k,
            "ban.glimpses": G, "ban.question_length": L,
            "ban.question_padding": "masked" if masked else "unmasked",
            "ban.box_padding": "zero_rows" if zero_rows else "counts"}
    vis = k * D + (G * D if task == "vqa" else 0)
    shapes = [("word_embedding.weight", (V + 1, Ew))]
    if tables == 2:
        shapes.append(("word_embedding_extra.weight", (V + 1, Ew)))
    shapes += [("gru.weight_ih", (3 * D, Ew * tables)), ("gru.weight_hh", (3 * D, D)), ("gru.bias_ih", (3 * D,)),
               ("gru.bias_hh", (3 * D,)), ("visual.weight", (vis, Dv + 6 * spatial)), ("visual.bias", (vis,)),
               ("attention.q_net.weight", (k * D, D)), ("attention.q_net.bias", (k * D,)),
               ("attention.h_mat", (G, k * D)), ("attention.h_bias", (G,))]
    if task == "vqa":
        meta.update({"ban.answer_count": A, "ban.classifier_hidden": 2 * D, "ban.counter_objects": O})
        shapes += [("glimpse.q_net.weight", (G, D, D)), ("glimpse.q_net.bias", (G, D)),
                   ("glimpse.q_prj.weight", (G, D, D)), ("glimpse.q_prj.bias", (G, D))]
        if O:
            shapes += [("glimpse.c_prj.weight", (G, D, O + 1)), ("glimpse.c_prj.bias", (G, D)),
                       ("counter.functions", (F, S + 1))]
        shapes += [("classifier.0.weight", (2 * D, D)), ("classifier.0.bias", (2 * D,)),
                   ("classifier.1.weight", (A, 2 * D)), ("classifier.1.bias", (A,))]
    dtype = np.float16 if fp16 else np.float32
    tensors = {}
    for name, shape in shapes:
        x = rng.standard_normal(shape) * 0.5
        if name == "counter.functions":
            x = np.abs(x) + 0.1
        tensors[name] = x.astype(dtype)
    if words is not False:
        words = words or ["w%d" % i for i in range(V)]
        assert len(words) == V
        meta["tokenizer.words"] = words
        meta["tokenizer.unknown_id"] = V - 1
    if task == "vqa" and answers:
        meta["answers.labels"] = ["answer %d" % i for i in range(A)]
    return meta, tensors


def openvqa_model(rng, gqa, V=7, Ew=4, Dv=5, D=4, k=3, G=2, A=3, L=5, pad=6, Eb=3):
    """(metadata, tensors) of a tiny model with OpenVQA's conventions: glimpses of rank k,
    PAD inside the vocabulary, its tokenizer; for GQA the box adapter and fixed padding.
    The tensors are those of ban.h's table (banfile.shapes)."""
    meta = {"ban.task": "vqa", "ban.vocab_size": V, "ban.embedding_dim": Ew, "ban.embedding_tables": 1,
            "ban.feature_dim": Dv, "ban.hidden_dim": D, "ban.attention_rank": k, "ban.glimpse_rank": k,
            "ban.glimpses": G, "ban.question_length": L, "ban.question_padding": "unmasked",
            "ban.answer_count": A, "ban.classifier_hidden": 2 * D, "ban.counter_objects": 0,
            "tokenizer.rules": "openvqa", "tokenizer.padding_id": 0, "tokenizer.unknown_id": 1,
            "tokenizer.words": ["PAD", "UNK", "CLS"] + ["w%d" % i for i in range(V - 3)],
            "answers.labels": ["answer %d" % i for i in range(A)]}
    if gqa:
        meta.update({"ban.box_padding": "fixed", "ban.pad_boxes": pad, "ban.adapter": "box_embedding",
                     "ban.adapter_dim": D, "ban.adapter_box_dim": Eb})
    else:
        meta["ban.box_padding"] = "zero_rows"
    tensors = {n: (rng.standard_normal(shape) * 0.5).astype(np.float32) for n, shape in banfile.shapes(meta).items()}
    return meta, tensors


def npy_bytes(arr, version=None):
    f = io.BytesIO()
    if version is None:
        np.save(f, arr)
    else:
        np.lib.format.write_array(f, arr, version=version)
    return f.getvalue()


def seeds():
    """{relative path: bytes}"""
    rng = np.random.default_rng(20240601)
    out = {}
    golden = ban_export.vocabulary(os.path.join(ROOT, "tests", "fixtures", "ban_ref_g2.dictionary.pkl"), 48)
    vocab = golden + EXTRA_WORDS
    cases = {
        "vqa_words.ban": model(rng, V=len(vocab), Ew=2, tables=2, words=vocab, L=14),
        "vqa_fp16_masked.ban": model(rng, fp16=True, masked=True, zero_rows=False, O=0, G=1),
        "vqa_counter3.ban": model(rng, O=3, F=16, S=4, G=3, D=3, k=1, answers=False, words=False),
        "grounding_s.ban": model(rng, task="grounding", spatial=1, G=1, L=6),
        "grounding_2g.ban": model(rng, task="grounding", G=2, masked=True),
    }
    # an image encoder (8x8 RGB -> conv 3x3 pad 1 to Dv channels, ReLU, 2x2 max-pool: a 4x4 grid)
    meta, tensors = model(rng, Dv=5, O=2)
    meta["encoder.input_size"] = [8, 8]
    meta["encoder.layers"] = [1, 5, 3, 1, 1, 2, 0, 0, 0, 0, 3, 0, 2, 2, 0]  # kind, out, kernel, stride, pad
    tensors["encoder.input_affine"] = np.array([[1 / 255.0] * 3, [-0.5] * 3], np.float32)
    tensors["encoder.conv0.weight"] = (rng.standard_normal((5, 3, 3, 3)) * 0.5).astype(np.float32)
    tensors["encoder.conv0.bias"] = np.zeros(5, np.float32)
    cases["vqa_encoder.ban"] = (meta, tensors)
    cases["openvqa_vqa.ban"] = openvqa_model(rng, gqa=False)
    cases["openvqa_gqa.ban"] = openvqa_model(rng, gqa=True)
    # the models fuzz_forward runs: VQA and grounding with their weights in panels (ban.h's own
    # products), the encoder model in rows (CBLAS)
    for name in ("vqa_words.ban", "grounding_s.ban", "openvqa_gqa.ban"):
        meta, tensors = cases[name]
        cases[name] = (meta, banfile.with_layout(tensors, "panels"))
    for name, (meta, tensors) in cases.items():
        out["model/" + name] = banfile.encode_ban(meta, tensors)
    small = out["model/vqa_fp16_masked.ban"]
    (data_offset,) = struct.unpack_from("<Q", small, 32)
    out["model/cut_header.ban"] = small[:48]
    out["model/cut_directory.ban"] = small[:data_offset // 2]
    out["model/cut_data.ban"] = small[:len(small) - 40]
    empty = bytearray(banfile.HEADER.pack(b"BANM", 1, 64, 0, 0, 0, 64, 0))
    out["model/empty.ban"] = bytes(empty + b"\0" * (64 - len(empty)))

    questions = ["What color is the man's shirt?", "how many people are there in the picture",
                 "Is it sunny outside?", "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ Σ", "İSTANBUL DŽEMAL straße ﬁsh", "it's\u00a0the\u2003dog's",
                 "", "   ", "a,b?c'''s 's", "\xe6\x97\xa5\xe6\x9c\xac"]
    for i, q in enumerate(questions):
        out["tokenizer/q%d.txt" % i] = q.encode("utf-8")
    out["tokenizer/invalid_utf8.txt"] = b"bad \xff byte \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf"
    out["tokenizer/truncated_utf8.txt"] = b"what \xe6\x97"

    # fuzz_forward: model (0 VQA, 1 grounding, 2 encoder, 3 OpenVQA's GQA), batch, boxes, tokens, entities, flags (2 bytes),
    # [images], glimpses, then the values of the arrays (bytes 16..253: finite, non-zero)
    frng = np.random.default_rng(7)
    heads = {"vqa_plain": [0, 2, 5, 14, 0, 0x00, 0x00, 0],
             "vqa_counts_attention_entropy": [0, 3, 6, 9, 0, 0x30, 0x60, 1],
             "vqa_shared_images": [0, 3, 4, 10, 0, 0x01, 0x00, 2, 2],
             "vqa_zero_rows_glimpse1": [0, 2, 7, 5, 0, 0x00, 0x02, 1],
             "grounding_entity_counts": [1, 2, 6, 8, 3, 0x00, 0x01, 0],
             "grounding_signed_values": [1, 3, 5, 6, 2, 0x10, 0x08, 0],
             "beyond_limits": [0, 5, 9, 17, 5, 0x00, 0x00, 3],
             "encoder_pixels": [2, 2, 0, 6, 0, 0x00, 0x00, 1],
             "openvqa_gqa_padded": [3, 2, 4, 5, 0, 0x30, 0x60, 0],
             "openvqa_gqa_cut": [3, 2, 8, 7, 0, 0x00, 0x00, 1]}
    for name, head in heads.items():
        out["forward/%s.bin" % name] = bytes(head) + bytes(frng.integers(16, 254, 700, dtype=np.uint8))

    arrays = {"f4_3d": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "i4_2d": np.arange(6, dtype=np.int32)[None],
              "i8_1d": np.array([1, -2, 1 << 40], np.int64), "u1_scalar": np.array(7, np.uint8),
              "f4_empty": np.zeros((0, 5), np.float32)}
    for name, arr in arrays.items():
        out["npy/%s.npy" % name] = npy_bytes(arr)
    out["npy/v2.npy"] = npy_bytes(np.ones((2, 2), np.float32), version=(2, 0))
    out["npy/v3.npy"] = npy_bytes(np.ones(3, np.int32), version=(3, 0))
    out["npy/fortran.npy"] = npy_bytes(np.asfortranarray(np.ones((2, 3), np.float32)))
    out["npy/f8.npy"] = npy_bytes(np.ones(2, np.float64))
    out["npy/truncated.npy"] = npy_bytes(np.ones((4, 4), np.float32))[:-5]
    return out


def write_or_check(all_seeds, description):
    """Write {relative path: bytes} under corpus/, or with --check compare them with what is
    committed; the exit status of a seed script."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--check", action="store_true", help="compare with the committed seeds instead of writing")
    args = ap.parse_args()
    stale = []
    for rel, data in sorted(all_seeds.items()):
        path = os.path.join(HERE, "corpus", rel)
        if args.check:
            if not os.path.exists(path) or open(path, "rb").read() != data:
                stale.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # by rename, never in place: a fuzzer may have the old model mapped (ban_model_load),
        # and a mapped file truncated under it is a SIGBUS
        banfile.write_atomic(path, data)
        print("%6d  %s" % (len(data), os.path.relpath(path, ROOT)))
    if stale:
        print("stale seeds: %s" % ", ".join(stale))
        return 1
    return 0


def main():
    return write_or_check(seeds(), __doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
