#!/usr/bin/python3
"""BAN in PyTorch, computed as ban.h computes it: the oracle of the parity tests, the model
of the training script and of the PyTorch benchmark.

    python3 tools/ban_torch.py check CHECKPOINT.pth FIXTURE.npz [--op c|s|cs]

runs a reference checkpoint (its configuration inferred as tools/ban_export.py infers it) on
a golden fixture's inputs (v, b, q, and e for grounding) and prints the largest difference
from the fixture's outputs (logits and att, or att_logits).

The modules carry the reference implementation's names (w_emb, q_emb.rnn, v_att.logits,
b_net, q_prj, c_prj, classifier, counter), so a state dict of the reference loads here and
a checkpoint saved here (save_checkpoint) is one the exporter reads like the reference's.

    model = BanVQA(vocab_size, feature_dim, hidden, glimpses, answers, op="c")
    logits, att = model(v, b, q)                       # reference conventions
    logits, att = model(v, b, q, box_counts, q_len)    # explicit padding (masked=True models)
    ground = BanGrounding(vocab_size, feature_dim, hidden, glimpses, op="")
    att_logits = ground(v, b, q, e)
"""
import torch
import torch.nn as nn
from torch.nn.utils import weight_norm

MINUS_INFINITE = -99.0  # the reference's fill for masked grounding logits


class FCNet(nn.Module):
    """One weight-normalised Linear in `main` (after a Dropout when dropout > 0), then ReLU."""

    def __init__(self, in_dim, out_dim, relu=True, dropout=0.0):
        super().__init__()
        layers = [nn.Dropout(dropout)] if dropout > 0 else []
        layers.append(weight_norm(nn.Linear(in_dim, out_dim), dim=None))
        if relu:
            layers.append(nn.ReLU())
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


class WordEmbedding(nn.Module):
    def __init__(self, vocab_size, dim=300, two_tables=False):
        super().__init__()
        self.emb = nn.Embedding(vocab_size + 1, dim, padding_idx=vocab_size)
        self.emb_ = nn.Embedding(vocab_size + 1, dim, padding_idx=vocab_size) if two_tables else None

    def forward(self, q):
        x = self.emb(q)
        return torch.cat([x, self.emb_(q)], 2) if self.emb_ is not None else x


class QuestionEmbedding(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.rnn = nn.GRU(in_dim, hidden, 1, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]  # every hidden state (B, L, D)


class AttentionLogits(nn.Module):
    """Low-rank bilinear attention logits: p_g . (ReLU(U v_k) * ReLU(V q_l)) + b_g."""

    def __init__(self, v_dim, q_dim, hidden, glimpses, rank=3):
        super().__init__()
        self.v_net = FCNet(v_dim, hidden * rank, dropout=0.2)
        self.q_net = FCNet(q_dim, hidden * rank, dropout=0.2)
        self.dropout = nn.Dropout(0.5)
        self.h_mat = nn.Parameter(torch.randn(1, glimpses, 1, hidden * rank))
        self.h_bias = nn.Parameter(torch.randn(1, glimpses, 1, 1))

    def forward(self, v, q, image_index=None):
        v_ = self.dropout(self.v_net(v))  # (N, K, kD): once per image
        if image_index is not None:
            v_ = v_[image_index]  # (B, K, kD)
        q_ = self.q_net(q)  # (B, L, kD)
        h = self.h_mat.squeeze(2).squeeze(0)  # (G, kD)
        return torch.einsum("gj,bkj,blj->bgkl", h, v_, q_) + self.h_bias  # (B, G, K, L)


class BiAttention(nn.Module):
    def __init__(self, v_dim, q_dim, hidden, glimpses, rank=3):
        super().__init__()
        self.glimpses = glimpses
        self.logits = weight_norm(AttentionLogits(v_dim, q_dim, hidden, glimpses, rank), name="h_mat", dim=None)

    def forward(self, v, q, box_mask, q_mask=None, fill=-float("inf"), softmax=True, image_index=None):
        """box_mask (B, K) and q_mask (B, L): True where padding. With image_index (B), v holds
        N images and question b looks at image image_index[b]."""
        logits = self.logits(v, q, image_index)
        logits = logits.masked_fill(box_mask[:, None, :, None], fill)
        if q_mask is not None:
            logits = logits.masked_fill(q_mask[:, None, None, :], fill)
        if not softmax:
            return logits
        B, G, K, L = logits.shape
        p = torch.softmax(logits.reshape(B, G, K * L), 2).reshape(B, G, K, L)
        return p, logits


class GlimpseNet(nn.Module):
    """The joint representation of one map: f_d = sum_kl ReLU(U'v_k)_d A_kl ReLU(V'q_l)_d."""

    def __init__(self, v_dim, hidden):
        super().__init__()
        self.v_net = FCNet(v_dim, hidden, dropout=0.2)
        self.q_net = FCNet(hidden, hidden, dropout=0.2)

    def forward(self, v, q, att, image_index=None):
        v_ = self.v_net(v)
        if image_index is not None:
            v_ = v_[image_index]
        q_ = self.q_net(q)
        return torch.einsum("bkd,bkl,bld->bd", v_, att, q_)


class PiecewiseLin(nn.Module):
    def __init__(self, n=16):
        super().__init__()
        self.n = n
        self.weight = nn.Parameter(torch.ones(n + 1))
        self.weight.data[0] = 0

    def forward(self, x):
        w = self.weight.abs()
        w = w / w.sum()
        csum = w.cumsum(0)
        y = self.n * x
        idx = y.long()
        frac = y - y.trunc()
        lo = idx.clamp(0, self.n)
        hi = (idx + 1).clamp(0, self.n)
        return csum[lo] + frac * w[hi]


class Counter(nn.Module):
    """The counting module of Zhang, Hare, Pruegel-Bennett (ICLR 2018) on the top `objects` boxes."""

    def __init__(self, objects=10, functions=16, segments=16):
        super().__init__()
        self.objects = objects
        self.f = nn.ModuleList([PiecewiseLin(segments) for _ in range(functions)])

    def forward(self, boxes, scores):
        """boxes (B, K, 4) corners, zero for padding; scores (B, K), -inf for padding."""
        O = self.objects
        B, K = scores.shape
        if K < O:  # virtual padded boxes, as if the input had been padded to O rows
            scores = torch.cat([scores, scores.new_full((B, O - K), -float("inf"))], 1)
            boxes = torch.cat([boxes, boxes.new_zeros(B, O - K, 4)], 1)
        scores, idx = scores.topk(O, dim=1)
        boxes = boxes.gather(1, idx[:, :, None].expand(B, O, 4))
        a = torch.sigmoid(scores)  # (B, O)
        rel = a[:, :, None] * a[:, None, :]
        dist = 1 - self.iou(boxes)
        score = self.f[0](rel) * self.f[1](dist)
        dedup = self.f[3](rel) * self.f[4](dist)
        score_diff = (dedup[:, :, :, None] - dedup[:, :, None, :]).abs()  # [b, i, j, k] = |d_ij - d_ik|
        att_diff = (a[:, :, None] - a[:, None, :]).abs()
        sim = self.f[2](1 - score_diff).prod(dim=1) * self.f[2](1 - att_diff)
        row = sim.sum(2)
        score = score / (row[:, :, None] * row[:, None, :])
        correction = self.f[0](a * a) / row
        count = score.sum(2).sum(1, keepdim=True) + correction.sum(1, keepdim=True)
        count = (count + 1e-20).sqrt().clamp(0, O)
        lo = count.long()
        frac = count - count.trunc()
        one_hot = torch.zeros(B, O + 1, dtype=count.dtype, device=count.device)
        one_hot = one_hot.scatter(1, lo.clamp(max=O), 1 - frac)
        one_hot = one_hot.scatter_add(1, (lo + 1).clamp(max=O), frac)
        att_conf = (self.f[5](a) - 0.5).abs()
        dist_conf = (self.f[6](dist) - 0.5).abs()
        conf = self.f[7](att_conf.mean(1, keepdim=True) + dist_conf.mean(2).mean(1, keepdim=True))
        return one_hot * conf

    @staticmethod
    def iou(boxes):
        lt = torch.max(boxes[:, :, None, :2], boxes[:, None, :, :2])
        rb = torch.min(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        size = (boxes[:, :, 2:] - boxes[:, :, :2]).clamp(min=0)
        area = size[..., 0] * size[..., 1]
        return inter / (area[:, :, None] + area[:, None, :] - inter + 1e-12)


class Classifier(nn.Module):
    def __init__(self, in_dim, hidden, out_dim):
        super().__init__()
        self.main = nn.Sequential(weight_norm(nn.Linear(in_dim, hidden), dim=None), nn.ReLU(), nn.Dropout(0.5),
                                  weight_norm(nn.Linear(hidden, out_dim), dim=None))

    def forward(self, x):
        return self.main(x)


def box_padding(v, box_counts, zero_rows):
    """(N, K): True for padded boxes, beyond the counts or (the reference) all-zero rows."""
    N, K = v.shape[:2]
    mask = torch.zeros(N, K, dtype=torch.bool, device=v.device)
    if box_counts is not None:
        mask |= torch.arange(K, device=v.device)[None, :] >= box_counts[:, None]
    if zero_rows:
        mask |= v.abs().sum(2) == 0
    return mask


def question_padding(q, q_len, padding_id):
    """(B, L): True for padded positions, beyond q_len or from the first padding id."""
    if q_len is None:
        q_len = (q != padding_id).long().cumprod(1).sum(1)
    return torch.arange(q.shape[1], device=q.device)[None, :] >= q_len[:, None]


class BanVQA(nn.Module):
    def __init__(self, vocab_size, feature_dim, hidden, glimpses, answers, op="c", counter_objects=10,
                 rank=3, emb_dim=300, masked=False, zero_rows=True):
        super().__init__()
        self.vocab_size, self.glimpses, self.masked, self.zero_rows = vocab_size, glimpses, masked, zero_rows
        self.w_emb = WordEmbedding(vocab_size, emb_dim, "c" in op)
        self.q_emb = QuestionEmbedding(emb_dim * (2 if "c" in op else 1), hidden)
        self.v_att = BiAttention(feature_dim, hidden, hidden, glimpses, rank)
        self.b_net = nn.ModuleList([GlimpseNet(feature_dim, hidden) for _ in range(glimpses)])
        self.q_prj = nn.ModuleList([FCNet(hidden, hidden, relu=False, dropout=0.2) for _ in range(glimpses)])
        if counter_objects:
            self.c_prj = nn.ModuleList([FCNet(counter_objects + 1, hidden) for _ in range(glimpses)])
            self.counter = Counter(counter_objects)
        else:
            self.c_prj, self.counter = None, None
        self.classifier = Classifier(hidden, 2 * hidden, answers)

    def forward(self, v, b, q, box_counts=None, q_len=None, glimpses=None, image_index=None):
        """v (N, K, Dv), b (N, K, 6), box_counts (N): N = B images, or any N with image_index (B)."""
        box_mask = box_padding(v, box_counts, self.zero_rows)
        boxes = b[:, :, :4].masked_fill(box_mask[:, :, None], 0) if box_counts is not None else b[:, :, :4]
        if image_index is not None:
            box_mask, boxes = box_mask[image_index], boxes[image_index]
        q_mask = question_padding(q, q_len, self.vocab_size) if self.masked else None
        q_emb = self.q_emb(self.w_emb(q))
        att, logits = self.v_att(v, q_emb, box_mask, q_mask, image_index=image_index)
        for g in range(glimpses or self.glimpses):
            joint = self.b_net[g](v, q_emb, att[:, g], image_index)
            q_emb = self.q_prj[g](joint.unsqueeze(1)) + q_emb
            if self.counter is not None:
                count = self.counter(boxes, logits[:, g].max(2)[0])
                q_emb = q_emb + self.c_prj[g](count).unsqueeze(1)
        if q_mask is not None:
            q_emb = q_emb.masked_fill(q_mask[:, :, None], 0)
        return self.classifier(q_emb.sum(1)), att


class BanGrounding(nn.Module):
    def __init__(self, vocab_size, feature_dim, hidden, glimpses, op="", rank=3, emb_dim=300):
        super().__init__()
        self.op, self.vocab_size = op, vocab_size
        self.w_emb = WordEmbedding(vocab_size, emb_dim, "c" in op)
        self.q_emb = QuestionEmbedding(emb_dim * (2 if "c" in op else 1), hidden)
        self.v_att = BiAttention(feature_dim + (6 if "s" in op else 0), hidden, hidden, glimpses, rank)

    def forward(self, v, b, q, e, box_counts=None, entity_counts=None):
        if "s" in self.op:
            v = torch.cat([v, b], 2)
        box_mask = box_padding(v, box_counts, True)
        q_emb = self.q_emb(self.w_emb(q))
        q_ent = q_emb.gather(1, e[:, :, None].expand(-1, -1, q_emb.shape[2]))
        att = self.v_att(v, q_ent, box_mask, fill=MINUS_INFINITE, softmax=False)
        if entity_counts is None:
            ent_mask = e == 0
            ent_mask[:, 0] = False
        else:
            ent_mask = torch.arange(e.shape[1], device=e.device)[None, :] >= entity_counts[:, None]
        return att.masked_fill(ent_mask[:, None, None, :], MINUS_INFINITE)


def randomize_(model, seed=0, scale=0.5):
    """Random weights everywhere (weight-norm gains too), so that no part hides behind a default."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g") or name.endswith("h_mat_g"):
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            elif name.startswith("counter."):
                p.copy_(torch.rand(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model


def save_checkpoint(model, path, epoch=0, legacy=False):
    """Save as the reference does: {'epoch', 'model_state'} with nn.DataParallel's 'module.' prefix."""
    state = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save({"epoch": epoch, "model_state": state}, path, _use_new_zipfile_serialization=not legacy)


def load_reference_state(model, path):
    """Load a reference checkpoint ({'model_state': ...} with 'module.' keys) into a model,
    read by tools/torchfile.py (torch.load would run whatever code a pickle holds)."""
    import torchfile
    state, _ = torchfile.load_state_dict(path)
    model.load_state_dict({k[len("module."):] if k.startswith("module.") else k: torch.from_numpy(v.copy())
                           for k, v in state.items()})
    return model


# ---- the image encoder: pixels -> a grid of visual channels ------------------------------------

CONV, RELU, MAXPOOL = 1, 2, 3  # layer kinds, as in the .ban file's encoder.layers


class GridEncoder(nn.Module):
    """A small CNN computed as ban.h computes it: x = byte * scale[c] + shift[c]; then
    conv k x k (zero padding, stride, bias) / ReLU / max-pool (no padding, floor); the final
    C x H x W grid becomes K = H*W visual channels (row-major cells) of C features, each with
    its normalised cell box as spatial feature.

    layers: list of (kind, out_channels, kernel, stride, padding). With batch_norm, each conv
    is followed by a BatchNorm2d while training; fold_batch_norm() merges them into the convs.
    """

    def __init__(self, layers, in_channels=3, image_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                 batch_norm=True):
        super().__init__()
        self.layers, self.image_size = [tuple(int(x) for x in l) for l in layers], image_size
        scale = [1.0 / (255.0 * s) for s in std]
        shift = [-m / s for m, s in zip(mean, std)]
        self.register_buffer("input_affine", torch.tensor([scale, shift], dtype=torch.float32))
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList() if batch_norm else None
        c = in_channels
        for kind, out, k, stride, pad in self.layers:
            if kind == CONV:
                self.convs.append(nn.Conv2d(c, out, k, stride, pad))
                if batch_norm:
                    self.norms.append(nn.BatchNorm2d(out))
                c = out
        self.out_channels = c

    def grid_size(self):
        h = self.image_size
        for kind, out, k, stride, pad in self.layers:
            if kind in (CONV, MAXPOOL):
                h = (h + 2 * pad - k) // stride + 1
        return h

    def forward(self, pixels):
        """pixels (N, H, W, 3) uint8 -> features (N, K, C), spatials (N, K, 6)"""
        x = pixels.permute(0, 3, 1, 2).float()
        a = self.input_affine
        x = x * a[0][None, :, None, None] + a[1][None, :, None, None]
        conv = 0
        for kind, out, k, stride, pad in self.layers:
            if kind == CONV:
                x = self.convs[conv](x)
                if self.norms is not None:
                    x = self.norms[conv](x)
                conv += 1
            elif kind == RELU:
                x = torch.relu(x)
            elif kind == MAXPOOL:
                x = nn.functional.max_pool2d(x, k, stride)
        N, C, H, W = x.shape
        feats = x.reshape(N, C, H * W).transpose(1, 2)
        return feats, grid_spatials(H, W, x.dtype, x.device).expand(N, -1, -1)

    def fold_batch_norm(self):
        """Merge each BatchNorm (running statistics) into its conv: what ban.h runs."""
        if self.norms is None:
            return self
        with torch.no_grad():
            for conv, bn in zip(self.convs, self.norms):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv.weight.mul_(scale[:, None, None, None])
                conv.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
        self.norms = None
        return self


def grid_spatials(H, W, dtype=torch.float32, device=None):
    """(1, H*W, 6): cell (y, x) -> x/W, y/H, (x+1)/W, (y+1)/H, 1/W, 1/H"""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=dtype, device=device), torch.arange(W, dtype=dtype, device=device),
                            indexing="ij")
    xs, ys = xs.reshape(-1), ys.reshape(-1)
    one = torch.ones_like(xs)
    return torch.stack([xs / W, ys / H, (xs + 1) / W, (ys + 1) / H, one / W, one / H], 1)[None]


class BanImageVQA(BanVQA):
    """BanVQA on a grid of CNN features: masked questions, every grid cell a real box, no counter."""

    def __init__(self, vocab_size, answers, layers, hidden=96, glimpses=2, emb_dim=64, image_size=64,
                 batch_norm=True, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)):
        encoder = GridEncoder(layers, image_size=image_size, batch_norm=batch_norm, mean=mean, std=std)
        super().__init__(vocab_size, encoder.out_channels, hidden, glimpses, answers, op="", counter_objects=0,
                         emb_dim=emb_dim, masked=True, zero_rows=False)
        self.encoder = encoder

    def forward(self, pixels, q, q_len, image_index=None, glimpses=None):
        feats, spatials = self.encoder(pixels)  # once per image; projected once per image too
        return super().forward(feats, spatials, q, None, q_len, glimpses, image_index)


def check(checkpoint, fixture, op=None):
    """The largest differences of a reference checkpoint, run here, from a fixture's outputs."""
    import numpy as np
    import ban_export
    import torchfile
    state, _ = torchfile.load_state_dict(checkpoint)
    meta, _ = ban_export.convert(ban_export.find_state_dict(state, checkpoint), checkpoint, op)
    z = np.load(fixture)
    op = op if op is not None else ("c" if meta["ban.embedding_tables"] == 2 else "")
    V, Dv, D, G = meta["ban.vocab_size"], meta["ban.feature_dim"], meta["ban.hidden_dim"], meta["ban.glimpses"]
    with torch.no_grad():
        if meta["ban.task"] == "vqa":
            model = load_reference_state(BanVQA(V, Dv, D, G, meta["ban.answer_count"], op=op), checkpoint).eval()
            logits, att = model(*(torch.from_numpy(z[k]) for k in "vbq"))
            return {"logits": float(np.abs(logits.numpy() - z["logits"]).max()),
                    "att": float(np.abs(att.numpy() - z["att"]).max())}
        model = load_reference_state(BanGrounding(V, Dv, D, G, op=op), checkpoint).eval()
        out = model(*(torch.from_numpy(z[k]) for k in "vbqe"))
        return {"att_logits": float(np.abs(out.numpy() - z["att_logits"]).max())}


def main(argv=None):
    import argparse
    import json
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="run a reference checkpoint on a fixture's inputs; print the differences")
    c.add_argument("checkpoint")
    c.add_argument("fixture", help="an .npz of the reference's golden vectors (tests/fixtures/ban_ref_*.npz)")
    c.add_argument("--op", help="the reference's --op ('c' is inferred from the tensors)")
    args = ap.parse_args(argv)
    print(json.dumps(check(args.checkpoint, args.fixture, args.op)))
    return 0


if __name__ == "__main__":
    import os
    import sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
