#!/usr/bin/python3
"""Write a VQA model file (.ban) with random weights of a given configuration.

    /usr/bin/python3 tools/random_model.py --preset paper-ban8 --output ban8.ban
    /usr/bin/python3 tools/random_model.py --hidden 64 --glimpses 2 --feature-dim 32 \\
        --answers 50 --vocab 200 --output small.ban

For benchmarks and tests that need a model of a real size, not real answers: the file
holds every tensor of docs/FORMAT.md in the shapes the configuration implies, a
vocabulary (common question words, then made-up ones) and answer strings, and follows
the reference's conventions (questions padded to 14 positions and not masked, padded
boxes as all-zero rows). Weights are drawn like PyTorch's default initialisation
(uniform in +-1/sqrt(fan_in)); the counter's functions start as the reference's
(ones, first weight zero). Standard library and numpy only; written atomically.

The preset paper-ban8 is the paper's VQA 2.0 configuration (BAN-8 with the counter and
the concatenated 600-d embedding): hidden 1280, 8 glimpses, 2048-d features, 3,129
answers, two 300-d embedding tables over a vocabulary of 19,901 words, counter over the
top 10 boxes, classifier hidden 2,560 (about 90 million parameters, 360 MB).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import banfile  # noqa: E402

PRESETS = {
    "paper-ban8": dict(hidden=1280, glimpses=8, feature_dim=2048, answers=3129, vocab=19901, embedding_dim=300,
                       tables=2, counter=10, question_length=14, attention_rank=3),
}
DEFAULTS = dict(hidden=64, glimpses=2, feature_dim=64, answers=100, vocab=500, embedding_dim=32, tables=2, counter=10,
                question_length=14, attention_rank=3)

# the first words of the vocabulary, so that generated questions tokenise to real words
QUESTION_WORDS = (
    "what is the color of a are there how many does this have on in picture man woman person people "
    "is it shirt table dog cat bus car kind animal shown room where which side sitting wearing holding "
    "left right top bottom front behind next to near sky water grass tree building street sign white black "
    "red blue green yellow brown gray orange pink purple can you see any do they he she his her their "
    "or and with for from by at as one two three four five many much time sport game food plate pizza "
    "banana umbrella horse train plane boat bird bed chair couch tv window door wall floor ground clock "
    "'s why who when type made playing eating standing walking riding flying open closed").split()
ANSWER_WORDS = ("yes no 1 2 3 4 5 6 7 8 9 10 0 white black red blue green yellow brown gray orange pink "
                "left right frisbee tennis baseball pizza dog cat horse giraffe elephant kitchen bathroom "
                "skateboarding surfing skiing umbrella wood metal grass snow water").split()


def config_for(preset=None, **overrides):
    """The configuration dict of a preset (or the small defaults), with overrides applied."""
    cfg = dict(PRESETS[preset] if preset else DEFAULTS)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["classifier_hidden"] = overrides.get("classifier_hidden") or 2 * cfg["hidden"]
    for key in ("hidden", "glimpses", "feature_dim", "answers", "vocab", "embedding_dim", "question_length",
                "attention_rank"):
        if cfg[key] < 1:
            raise ValueError("%s must be at least 1 (got %d)" % (key, cfg[key]))
    if cfg["tables"] not in (1, 2):
        raise ValueError("tables must be 1 or 2 (got %d)" % cfg["tables"])
    if not 1 <= cfg["glimpses"] <= 32:
        raise ValueError("glimpses must be in 1..32 (got %d)" % cfg["glimpses"])
    if cfg["counter"] < 0:
        raise ValueError("counter must be 0 (none) or more boxes (got %d)" % cfg["counter"])
    return cfg


def vocabulary(n):
    words = list(dict.fromkeys(QUESTION_WORDS))[:n]
    words += ["word%05d" % i for i in range(n - len(words))]
    return words


def answer_labels(n):
    labels = list(dict.fromkeys(ANSWER_WORDS))[:n]
    labels += ["answer %d" % i for i in range(n - len(labels))]
    return labels


def build(cfg, seed=0):
    """(metadata, tensors) of a random model of configuration cfg: every tensor ban.h's weight
    table (banfile.WEIGHTS) gives that configuration, in rows."""
    rng = np.random.default_rng(seed)
    V, A, O = cfg["vocab"], cfg["answers"], cfg["counter"]
    meta = {
        "ban.task": "vqa",
        "ban.vocab_size": V,
        "ban.embedding_dim": cfg["embedding_dim"],
        "ban.embedding_tables": cfg["tables"],
        "ban.feature_dim": cfg["feature_dim"],
        "ban.spatial_concat": 0,
        "ban.hidden_dim": cfg["hidden"],
        "ban.attention_rank": cfg["attention_rank"],
        "ban.glimpses": cfg["glimpses"],
        "ban.question_length": cfg["question_length"],
        "ban.question_padding": "unmasked",
        "ban.box_padding": "zero_rows",
        "ban.answer_count": A,
        "ban.classifier_hidden": cfg["classifier_hidden"],
        "ban.counter_objects": O,
        "tokenizer.words": vocabulary(V),
        "tokenizer.unknown_id": V - 1,
        "answers.labels": answer_labels(A),
        "source.checkpoint": "random weights (seed %d)" % seed,
        "source.exporter": "random_model.py 2",
    }
    fan_in = {}  # a bias is drawn like its weight, from the weight's inputs
    for name, bias, *_ in banfile.WEIGHTS:
        fan_in[bias] = name
    t = {}
    for name, shape in banfile.shapes(meta).items():
        if name.startswith("word_embedding"):
            e = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.3)
            e[V:] = 0  # the padding row
            t[name] = e
            continue
        fan = t[fan_in[name]].shape[-1] if name in fan_in else shape[-1]
        bound = np.float32(1.0 / np.sqrt(fan))
        t[name] = (rng.random(shape, dtype=np.float32) * 2 - 1) * bound  # PyTorch's default initialisation
    if O:
        f = np.ones((16, 17), np.float32) + rng.random((16, 17), dtype=np.float32) * np.float32(0.1)
        f[:, 0] = 0  # the reference's counter starts from ones, its first weight zero
        t["counter.functions"] = f
    return meta, t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--output", required=True, help="the .ban file to write")
    ap.add_argument("--preset", choices=sorted(PRESETS), help="a named configuration (options below override it)")
    ap.add_argument("--hidden", type=int, help="hidden size D")
    ap.add_argument("--glimpses", type=int, help="glimpses G (1..32)")
    ap.add_argument("--feature-dim", type=int, help="box feature size Dv")
    ap.add_argument("--answers", type=int, help="answers A")
    ap.add_argument("--vocab", type=int, help="vocabulary size V")
    ap.add_argument("--embedding-dim", type=int, help="size of one embedding table")
    ap.add_argument("--tables", type=int, help="embedding tables, 1 or 2 (concatenated)")
    ap.add_argument("--counter", type=int, help="boxes the counter looks at (0: no counter)")
    ap.add_argument("--question-length", type=int, help="question positions (14)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fp16", action="store_true", help="store the weights as float16")
    ap.add_argument("--layout", choices=["panels", "rows"], default="panels",
                    help="the big Linear weights in panels (ban.h's own product, the default) or in rows (CBLAS)")
    args = ap.parse_args(argv)
    try:
        cfg = config_for(args.preset, hidden=args.hidden, glimpses=args.glimpses, feature_dim=args.feature_dim,
                         answers=args.answers, vocab=args.vocab, embedding_dim=args.embedding_dim,
                         tables=args.tables, counter=args.counter, question_length=args.question_length)
    except ValueError as e:
        ap.error(str(e))
    meta, tensors = build(cfg, args.seed)
    stored = banfile.with_layout(tensors, args.layout)
    if args.fp16:
        stored = {k: v.astype(np.float16) for k, v in stored.items()}
    banfile.write_ban(args.output, meta, stored)
    params = sum(v.size for v in tensors.values())
    print("%s: random VQA model, hidden %d, %d glimpses, %d-d features, %d answers, %d words, %s, %d parameters"
          % (args.output, cfg["hidden"], cfg["glimpses"], cfg["feature_dim"], cfg["answers"], cfg["vocab"],
             "counter of %d" % cfg["counter"] if cfg["counter"] else "no counter", params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
