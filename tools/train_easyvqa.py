#!/usr/bin/python3
"""Train BAN from pixels on easy-VQA: a small CNN whose grid cells are BAN's visual channels.

    python3 tools/train_easyvqa.py --data ../shared/data/easy-vqa --output build/easyvqa/model.pth
    python3 tools/ban_export.py build/easyvqa/model.pth --dictionary build/easyvqa/dictionary.pkl \
        --answers build/easyvqa/label2ans.pkl --output examples/models/easyvqa.ban

The network is tools/ban_torch.py's BanImageVQA, computed exactly as ban.h computes it:
the CNN (conv/ReLU/max-pool, batch norm folded into the convs when saving), then BAN with
masked questions and every grid cell a real box. Trained from scratch on the train split
(random horizontal flips: the shapes' classes do not change under them), evaluated on the
test split after every epoch. Batches are groups of images with all their questions, so the
CNN runs once per image. Writes the checkpoint (the reference's layout plus the encoder's
description), the vocabulary and answers as the reference's dictionary.pkl and
label2ans.pkl, and a JSON log. The only tool of the project that needs PyTorch.

    --fixtures DIR --checkpoint CKPT   writes the C tests' fixtures instead of training: a few
                                       test images, the encoder's features and the model's
                                       logits on them, and its answer to every test question,
                                       from PyTorch.
"""
import argparse
import json
import os
import pickle
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ban_torch as bt  # noqa: E402

# conv 3x3 / ReLU / max-pool 2: 64x64 pixels -> an 8 x 8 grid of 128-d cells
LAYERS = [(bt.CONV, 32, 3, 1, 1), (bt.RELU, 0, 0, 0, 0), (bt.MAXPOOL, 0, 2, 2, 0),
          (bt.CONV, 64, 3, 1, 1), (bt.RELU, 0, 0, 0, 0), (bt.MAXPOOL, 0, 2, 2, 0),
          (bt.CONV, 128, 3, 1, 1), (bt.RELU, 0, 0, 0, 0), (bt.MAXPOOL, 0, 2, 2, 0),
          (bt.CONV, 128, 3, 1, 1), (bt.RELU, 0, 0, 0, 0)]
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def tokenize(sentence, word2idx, add=False):
    """The reference tokenizer (jnhwkim/ban-vqa dataset.py, Dictionary.tokenize): lower, drop ',' and '?', "'s" -> " 's", split."""
    words = sentence.lower().replace(",", "").replace("?", "").replace("'s", " 's").split()
    if add:
        for w in words:
            word2idx.setdefault(w, len(word2idx))
    return [word2idx.get(w, len(word2idx) - 1) for w in words]


def question_kind(answer):
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in ("circle", "rectangle", "triangle") else "color"


def load_split(folder, word2idx, ans2label, max_len):
    from PIL import Image
    qs = json.load(open(os.path.join(folder, "questions.json")))
    ids = sorted({q[2] for q in qs})
    index = {i: n for n, i in enumerate(ids)}
    pixels = np.stack([np.asarray(Image.open(os.path.join(folder, "images", "%d.png" % i)).convert("RGB"))
                       for i in ids])
    V = len(word2idx)
    tokens = np.full((len(qs), max_len), V, np.int64)
    lengths = np.zeros(len(qs), np.int64)
    for n, (text, _, _) in enumerate(qs):
        t = tokenize(text, word2idx)[:max_len]
        tokens[n, :len(t)] = t
        lengths[n] = len(t)
    return {"pixels": torch.from_numpy(pixels), "tokens": torch.from_numpy(tokens),
            "lengths": torch.from_numpy(lengths),
            "image": torch.tensor([index[q[2]] for q in qs]), "answer": torch.tensor([ans2label[q[1]] for q in qs]),
            "kind": [question_kind(q[1]) for q in qs], "by_image": group(qs, index)}


def group(qs, index):
    by = [[] for _ in index]
    for n, q in enumerate(qs):
        by[index[q[2]]].append(n)
    return by


def batches(split, images_per_batch, shuffle, rng):
    order = list(range(len(split["by_image"])))
    if shuffle:
        rng.shuffle(order)
    for s in range(0, len(order), images_per_batch):
        imgs = order[s:s + images_per_batch]
        qidx = [q for i in imgs for q in split["by_image"][i]]
        local = {i: n for n, i in enumerate(imgs)}
        yield imgs, qidx, torch.tensor([local[int(split["image"][q])] for q in qidx])


def evaluate(model, split, images_per_batch=200):
    model.eval()
    correct = torch.zeros(len(split["answer"]), dtype=torch.bool)
    with torch.no_grad():
        for imgs, qidx, image_index in batches(split, images_per_batch, False, None):
            q = torch.tensor(qidx)
            logits, _ = model(split["pixels"][imgs], split["tokens"][q], split["lengths"][q], image_index)
            correct[q] = logits.argmax(1) == split["answer"][q]
    per = {}
    for kind in ("shape", "color", "yes/no"):
        mask = torch.tensor([k == kind for k in split["kind"]])
        per[kind] = round(100.0 * correct[mask].float().mean().item(), 3)
    return round(100.0 * correct.float().mean().item(), 3), per, int((~correct).sum())


def train(args):
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    torch.set_num_threads(args.threads)
    answers = [a.strip() for a in open(os.path.join(args.data, "answers.txt")) if a.strip()]
    ans2label = {a: i for i, a in enumerate(answers)}
    word2idx = {}
    for split in ("train", "test"):  # the reference builds its vocabulary over every split's questions
        for q in json.load(open(os.path.join(args.data, split, "questions.json"))):
            tokenize(q[0], word2idx, add=True)
    t0 = time.time()
    train_set = load_split(os.path.join(args.data, "train"), word2idx, ans2label, args.question_length)
    test_set = load_split(os.path.join(args.data, "test"), word2idx, ans2label, args.question_length)
    print("data: %d train / %d test questions, %d words, %d answers (%.1f s)" % (
        len(train_set["answer"]), len(test_set["answer"]), len(word2idx), len(answers), time.time() - t0),
        file=sys.stderr)
    model = bt.BanImageVQA(len(word2idx), len(answers), LAYERS, hidden=args.hidden, glimpses=args.glimpses,
                           emb_dim=args.emb_dim, mean=MEAN, std=STD)
    optim = torch.optim.Adamax(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(train_set["by_image"]) + args.batch_images - 1) // args.batch_images
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    log = {"command": " ".join(sys.argv), "torch": torch.__version__, "threads": args.threads,
           "parameters": sum(p.numel() for p in model.parameters()), "layers": LAYERS, "hidden": args.hidden,
           "glimpses": args.glimpses, "emb_dim": args.emb_dim, "epochs": []}
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        t0, total, seen, right = time.time(), 0.0, 0, 0
        for imgs, qidx, image_index in batches(train_set, args.batch_images, True, rng):
            px = train_set["pixels"][imgs]
            flip = torch.rand(len(imgs)) < 0.5
            px = torch.where(flip[:, None, None, None], px.flip(2), px)
            q = torch.tensor(qidx)
            logits, _ = model(px, train_set["tokens"][q], train_set["lengths"][q], image_index)
            loss = loss_fn(logits, train_set["answer"][q])
            optim.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            optim.step()
            sched.step()
            total += loss.item() * len(qidx)
            seen += len(qidx)
            right += int((logits.argmax(1) == train_set["answer"][q]).sum())
        acc, per, wrong = evaluate(model, test_set)
        entry = {"epoch": epoch + 1, "loss": round(total / seen, 5), "train_accuracy": round(100.0 * right / seen, 3),
                 "test_accuracy": acc, "test_per_type": per, "test_errors": wrong,
                 "seconds": round(time.time() - t0, 1), "lr": optim.param_groups[0]["lr"]}
        log["epochs"].append(entry)
        print(json.dumps(entry), file=sys.stderr, flush=True)
    model.encoder.fold_batch_norm()
    acc, per, wrong = evaluate(model, test_set)
    log.update({"final_test_accuracy": acc, "final_test_per_type": per, "final_test_errors": wrong,
                "training_seconds": round(time.time() - start, 1)})
    print("final (batch norm folded): %.3f%% test accuracy, %d errors, %.0f s" % (acc, wrong, time.time() - start),
          file=sys.stderr)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    torch.save({"epoch": args.epochs, "model_state": model.state_dict(),
                "encoder": {"layers": [list(l) for l in LAYERS], "image_size": 64},
                "conventions": {"question_padding": "masked", "box_padding": "counts",
                                "question_length": args.question_length}}, args.output)
    idx2word = sorted(word2idx, key=word2idx.get)
    with open(os.path.join(out_dir, "dictionary.pkl"), "wb") as f:
        pickle.dump([word2idx, idx2word], f)
    with open(os.path.join(out_dir, "label2ans.pkl"), "wb") as f:
        pickle.dump(answers, f)
    log_path = args.log or os.path.join(out_dir, "train_log.json")
    with open(log_path, "w") as f:
        json.dump(log, f, indent=1)
    return model


def load_model(ckpt_path):
    """A trained checkpoint back as a BanImageVQA (batch norm already folded)."""
    ckpt = torch.load(ckpt_path, map_location="cpu")
    state = ckpt["model_state"]
    vocab = state["w_emb.emb.weight"].shape[0] - 1
    answers = state["classifier.main.3.weight_v"].shape[0]
    model = bt.BanImageVQA(vocab, answers, [tuple(l) for l in ckpt["encoder"]["layers"]],
                           hidden=state["q_emb.rnn.weight_hh_l0"].shape[1],
                           glimpses=state["v_att.logits.h_mat_v"].shape[1],
                           emb_dim=state["w_emb.emb.weight"].shape[1], image_size=ckpt["encoder"]["image_size"],
                           batch_norm=False)
    model.load_state_dict(state)
    return model.eval()


def write_fixtures(args):
    """Fixed inputs and PyTorch's outputs for the C tests of the encoder and the model."""
    model = load_model(args.checkpoint)
    word2idx, _ = pickle.load(open(os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)),
                                                "dictionary.pkl"), "rb"))
    from PIL import Image
    qs = json.load(open(os.path.join(args.data, "test", "questions.json")))
    picks = [0, 1, 2, 3]
    pixels = np.stack([np.asarray(Image.open(os.path.join(args.data, "test", "images", "%d.png" % i))
                                  .convert("RGB")) for i in picks])
    chosen = [q for q in qs if q[2] in picks][:12]
    tokens = np.full((len(chosen), args.question_length), len(word2idx), np.int64)
    lengths = np.zeros(len(chosen), np.int64)
    for n, q in enumerate(chosen):
        t = tokenize(q[0], word2idx)
        tokens[n, :len(t)] = t
        lengths[n] = len(t)
    image_index = np.array([picks.index(q[2]) for q in chosen])
    with torch.no_grad():
        feats, spatials = model.encoder(torch.from_numpy(pixels))
        logits, att = model(torch.from_numpy(pixels), torch.from_numpy(tokens), torch.from_numpy(lengths),
                            torch.from_numpy(image_index))
    os.makedirs(args.fixtures, exist_ok=True)
    np.savez(os.path.join(args.fixtures, "easyvqa_parity.npz"), pixels=pixels, features=feats.numpy(),
             spatials=spatials.numpy(), tokens=tokens, lengths=lengths, image_index=image_index,
             logits=logits.numpy(), att=att.numpy())
    with open(os.path.join(args.fixtures, "easyvqa_parity.json"), "w") as f:
        json.dump({"questions": [q[0] for q in chosen], "answers": [q[1] for q in chosen], "images": picks,
                   "checkpoint": os.path.basename(args.checkpoint)}, f, indent=1)
    # PyTorch's answer to every test question, in the order of questions.json
    answers = [a.strip() for a in open(os.path.join(args.data, "answers.txt")) if a.strip()]
    test = load_split(os.path.join(args.data, "test"), word2idx, {a: i for i, a in enumerate(answers)},
                      args.question_length)
    predicted = [None] * len(test["answer"])
    with torch.no_grad():
        for imgs, qidx, image_index in batches(test, 200, False, None):
            q = torch.tensor(qidx)
            logits, _ = model(test["pixels"][imgs], test["tokens"][q], test["lengths"][q], image_index)
            for n, a in zip(qidx, logits.argmax(1).tolist()):
                predicted[n] = answers[a]
    with open(os.path.join(args.fixtures, "easyvqa_test_predictions.txt"), "w") as f:
        f.write("\n".join(predicted) + "\n")
    right = sum(p == answers[int(t)] for p, t in zip(predicted, test["answer"]))
    print("PyTorch on the test split: %d of %d right (%.3f%%)" % (right, len(predicted), 100.0 * right / len(predicted)),
          file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--data", required=True, help="the easy-VQA folder (train/, test/, answers.txt)")
    ap.add_argument("--output", help="the checkpoint to write (dictionary.pkl, label2ans.pkl, train_log.json beside)")
    ap.add_argument("--log", help="the JSON log (default: train_log.json beside the checkpoint)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch-images", type=int, default=32, help="images per batch, with all their questions")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=0.25, help="gradient-norm clipping, as the reference")
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--glimpses", type=int, default=2)
    ap.add_argument("--emb-dim", type=int, default=64)
    ap.add_argument("--question-length", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fixtures", help="write the C tests' fixtures to this folder (needs --checkpoint)")
    ap.add_argument("--checkpoint", help="a trained checkpoint (with --fixtures)")
    args = ap.parse_args()
    if args.fixtures:
        if not args.checkpoint:
            ap.error("--fixtures needs --checkpoint")
        write_fixtures(args)
    else:
        if not args.output:
            ap.error("--output is required")
        train(args)


if __name__ == "__main__":
    main()
