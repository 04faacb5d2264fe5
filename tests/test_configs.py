"""Other configurations of the reference, converted just as exactly as the golden ones.

Each case builds the model in PyTorch (tools/ban_torch.py, whose parity with the reference
test_golden.py checks) with random weights, saves it as the reference saves checkpoints
(zip or legacy layout, 'module.' keys, weight norm), exports it and compares build/ban's
outputs with PyTorch's on random inputs with padded boxes and questions."""
import numpy as np
import pytest

from conftest import run_ban

torch = pytest.importorskip("torch")
import ban_export  # noqa: E402
import ban_torch as bt  # noqa: E402

VQA_CASES = [
    # name, glimpses, op, hidden, feature size, answers, boxes, counter, legacy layout
    ("g1-single-embedding", 1, "", 32, 20, 7, 12, 10, False),
    ("g3-concat", 3, "c", 24, 50, 40, 36, 10, True),
    ("g4-wide", 4, "c", 64, 128, 100, 50, 10, False),
    ("g8-few-boxes", 8, "", 16, 16, 12, 8, 10, True),
    ("g2-no-counter", 2, "c", 40, 30, 25, 20, 0, False),
]


def random_inputs(rng, B, K, Dv, V, L=14, min_boxes=1):
    counts = rng.integers(min_boxes, K + 1, size=B)
    counts[0] = K
    v = rng.random((B, K, Dv), dtype=np.float32)
    xy = rng.random((B, K, 2), dtype=np.float32) * 0.7
    wh = rng.random((B, K, 2), dtype=np.float32) * 0.3 + 0.01
    b = np.concatenate([xy, xy + wh, wh], 2).astype(np.float32)
    for i, n in enumerate(counts):
        v[i, n:] = 0
        b[i, n:] = 0
    lengths = rng.integers(1, L + 1, size=B)
    q = np.full((B, L), V, np.int64)
    for i, n in enumerate(lengths):
        q[i, :n] = rng.integers(0, V, size=n)
    return v, b, q, counts, lengths


def save_all(tmp_path, **arrays):
    paths = {}
    for k, a in arrays.items():
        paths[k] = str(tmp_path / (k + ".npy"))
        np.save(paths[k], a)
    return paths


@pytest.mark.parametrize("name,G,op,D,Dv,A,K,objects,legacy", VQA_CASES, ids=[c[0] for c in VQA_CASES])
def test_vqa_configuration(tmp_path, name, G, op, D, Dv, A, K, objects, legacy):
    V = 37
    model = bt.randomize_(bt.BanVQA(V, Dv, D, G, A, op=op, counter_objects=objects), seed=len(name), scale=0.3).eval()
    ckpt, out = str(tmp_path / "model.pth"), str(tmp_path / "model.ban")
    bt.save_checkpoint(model, ckpt, epoch=3, legacy=legacy)
    meta, _ = ban_export.export(ckpt, out)
    assert (meta["ban.glimpses"], meta["ban.hidden_dim"], meta["ban.feature_dim"], meta["ban.answer_count"],
            meta["ban.embedding_tables"], meta["ban.counter_objects"]) == (G, D, Dv, A, 1 + ("c" in op), objects)
    rng = np.random.default_rng(G * 100 + D)
    v, b, q, _, _ = random_inputs(rng, 5, K, Dv, V)
    with torch.no_grad():
        logits, att = model(torch.from_numpy(v), torch.from_numpy(b), torch.from_numpy(q))
        one = model(torch.from_numpy(v), torch.from_numpy(b), torch.from_numpy(q), glimpses=1)[0]
    p = save_all(tmp_path, v=v, b=b, q=q)
    run_ban("run", out, "--features", p["v"], "--spatials", p["b"], "--tokens", p["q"], "--logits",
            tmp_path / "l.npy", "--attention", tmp_path / "a.npy")
    got_l, got_a = np.load(tmp_path / "l.npy"), np.load(tmp_path / "a.npy")
    assert np.abs(got_l - logits.numpy()).max() <= 1e-4, np.abs(got_l - logits.numpy()).max()
    assert np.abs(got_a - att.numpy()).max() <= 1e-5
    assert (got_l.argmax(1) == logits.numpy().argmax(1)).all()
    run_ban("run", out, "--features", p["v"], "--spatials", p["b"], "--tokens", p["q"], "--logits",
            tmp_path / "l1.npy", "--glimpses", 1)
    assert np.abs(np.load(tmp_path / "l1.npy") - one.numpy()).max() <= 1e-4


def test_vqa_masked_questions(tmp_path):
    """A model trained with question masking and counted boxes runs masked in ban.h too."""
    V, Dv, D, G, A, K = 29, 24, 32, 2, 9, 15
    model = bt.randomize_(bt.BanVQA(V, Dv, D, G, A, op="c", masked=True, zero_rows=False), seed=5, scale=0.3).eval()
    ckpt, out = str(tmp_path / "m.pth"), str(tmp_path / "m.ban")
    bt.save_checkpoint(model, ckpt)
    ban_export.export(ckpt, out, question_padding="masked", box_padding="counts", question_length=10)
    rng = np.random.default_rng(1)
    v, b, q, counts, lengths = random_inputs(rng, 6, K, Dv, V, L=10)
    v[1, counts[1] - 1] = 0  # a real box whose features are all zero stays a box for such a model
    with torch.no_grad():
        logits, att = model(*(torch.from_numpy(a) for a in (v, b, q)), torch.from_numpy(counts),
                            torch.from_numpy(lengths))
    p = save_all(tmp_path, v=v, b=b, q=q.astype(np.int32), n=counts.astype(np.int32), t=lengths)
    run_ban("run", out, "--features", p["v"], "--spatials", p["b"], "--tokens", p["q"], "--box-counts", p["n"],
            "--token-counts", p["t"], "--logits", tmp_path / "l.npy", "--attention", tmp_path / "a.npy")
    assert np.abs(np.load(tmp_path / "l.npy") - logits.numpy()).max() <= 1e-4
    assert np.abs(np.load(tmp_path / "a.npy") - att.numpy()).max() <= 1e-5


GROUNDING_CASES = [
    ("g1-plain", 1, "", 40, 32, False),
    ("g2-concat", 2, "c", 24, 20, True),
    ("g3-spatial", 3, "s", 16, 12, False),
    ("g1-concat-spatial", 1, "cs", 20, 10, True),
]


@pytest.mark.parametrize("name,G,op,D,Dv,legacy", GROUNDING_CASES, ids=[c[0] for c in GROUNDING_CASES])
def test_grounding_configuration(tmp_path, name, G, op, D, Dv, legacy):
    V, K, L, E, B = 31, 18, 30, 8, 4
    model = bt.randomize_(bt.BanGrounding(V, Dv, D, G, op=op), seed=len(name), scale=0.3).eval()
    ckpt, out = str(tmp_path / "g.pth"), str(tmp_path / "g.ban")
    bt.save_checkpoint(model, ckpt, legacy=legacy)
    meta, _ = ban_export.export(ckpt, out, op=op)
    assert meta["ban.task"] == "grounding" and meta["ban.spatial_concat"] == ("s" in op)
    rng = np.random.default_rng(G)
    v, b, q, _, _ = random_inputs(rng, B, K, Dv, V, L=L, min_boxes=3)
    # entity positions as the reference fills them: real ones first, then unused positions in order
    e = np.zeros((B, E), np.int64)
    for i in range(B):
        real = sorted(rng.choice(np.arange(1, L), size=i + 1, replace=False))
        rest = [x for x in range(L) if x not in real][:E - len(real)]
        e[i] = real + rest
    with torch.no_grad():
        want = model(*(torch.from_numpy(a) for a in (v, b, q, e))).numpy()
    p = save_all(tmp_path, v=v, b=b, q=q, e=e)
    run_ban("run", out, "--features", p["v"], "--spatials", p["b"], "--tokens", p["q"], "--entities", p["e"],
            "--logits", tmp_path / "l.npy")
    assert np.abs(np.load(tmp_path / "l.npy") - want).max() <= 1e-4
