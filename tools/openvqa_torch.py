#!/usr/bin/python3
"""OpenVQA's BAN in PyTorch, with OpenVQA's module structure and parameter names: the oracle of
the OpenVQA parity tests and the model of `bench_torch.py --preset openvqa-ban8`.

The modules follow MILVLG/openvqa openvqa/models/ban/{net,ban,adapter}.py (Net: embedding, rnn,
adapter, backbone = BAN with BiAttention, b_net and q_prj, classifer), so the `state_dict` of an
OpenVQA checkpoint (epochN.pkl, `module.` prefixed or not) loads here as it is; the tokenizer and
vocabularies are those of openvqa/datasets/{vqa,gqa}/*_loader.py.

    model, info = load_model("epoch13.pkl")                # configuration inferred from the shapes
    token_to_ix = vqa_vocabulary(["train.json", "val.json", "test.json", "vg.json"])
    q = question_ids("What is on the table?", token_to_ix, 14)
    logits, att = model(frcn, None, bbox, torch.from_numpy(q)[None])

Command line:
    openvqa_torch.py make-case --dataset vqa|gqa --hidden H --glimpses G --k-times K --feat-dim Dv
        --answers A --boxes K [--bbox-emb E] [--flat-out F] [--batch B] [--max-token L]
        [--module-prefix] [--serialisation zip|legacy] [--optimizer-state torch1.13|torch1.1]
        [--train-steps N] [--seed S] --output DIR/NAME
    openvqa_torch.py check-case DIR/NAME        # rerun a case's checkpoint on its inputs

make-case writes the files of the golden fixtures in ../shared/fixtures/openvqa (README there):
DIR/NAME.pkl (the checkpoint as OpenVQA's train engine saves it, after a few real Adamax steps),
NAME.npz (inputs and this model's outputs), NAME.json, and NAME.questions/{train,val,test,vg}.json
with NAME.answer_dict.json (VQA) or NAME.dicts.json (GQA).
"""
import argparse
import collections
import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils import weight_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchfile  # noqa: E402

VQA_MAX_TOKEN = 14  # vqa_loader.proc_ques(max_token=14)
PUNCTUATION = re.compile(r"([.,'!?\"()*#:;])")  # deleted by OpenVQA's tokenizer


# ---- configuration -------------------------------------------------------------------------------

class Cfg:
    """The part of OpenVQA's __C the BAN modules read, under OpenVQA's names."""

    def __init__(self, dataset, hidden, glimpses, k_times, feat_dim, flat_out, bbox_emb=0, aux_feat_dim=0,
                 word_embed=300):
        self.DATASET = dataset
        self.WORD_EMBED_SIZE = word_embed
        self.HIDDEN_SIZE = hidden
        self.GLIMPSE = glimpses
        self.K_TIMES = k_times
        self.BA_HIDDEN_SIZE = k_times * hidden
        self.FLAT_OUT_SIZE = flat_out
        self.DROPOUT_R = 0.2
        self.CLASSIFER_DROPOUT_R = 0.5
        self.FRCN_FEAT_SIZE = feat_dim  # FEAT_SIZE[dataset]['FRCN_FEAT_SIZE'][1]
        # VQA: the features go to the backbone as they are; GQA: frcn_linear maps them to HIDDEN_SIZE
        self.IMG_FEAT_SIZE = feat_dim if dataset == "vqa" else hidden
        self.USE_BBOX_FEAT = bbox_emb > 0
        self.BBOXFEAT_EMB_SIZE = bbox_emb
        self.USE_AUX_FEAT = aux_feat_dim > 0
        self.GRID_FEAT_SIZE = aux_feat_dim


# ---- the model (openvqa/models/ban) ------------------------------------------------------------

class MLP(nn.Module):
    """Per layer: Dropout, Linear weight-normalised over the whole matrix (dim=None), activation;
    the Linear of a one-layer MLP is therefore `mlp.1`."""

    def __init__(self, dims, act="ReLU", dropout_r=0.0):
        super().__init__()
        layers = []
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            if dropout_r > 0:
                layers.append(nn.Dropout(dropout_r))
            layers.append(weight_norm(nn.Linear(d_in, d_out), dim=None))
            if act:
                layers.append(getattr(nn, act)())
        self.mlp = nn.Sequential(*layers)

    def forward(self, x):
        return self.mlp(x)


class BC(nn.Module):
    """Low-rank bilinear connection: both sides projected to BA_HIDDEN_SIZE = K_TIMES * HIDDEN_SIZE;
    as the attention (atten=True) it carries the glimpses' h_mat and h_bias, as a glimpse network it
    sum-pools windows of K_TIMES (AvgPool1d(K_TIMES) * K_TIMES)."""

    def __init__(self, cfg, atten=False):
        super().__init__()
        self.k_times = cfg.K_TIMES
        self.v_net = MLP([cfg.IMG_FEAT_SIZE, cfg.BA_HIDDEN_SIZE], dropout_r=cfg.DROPOUT_R)
        self.q_net = MLP([cfg.HIDDEN_SIZE, cfg.BA_HIDDEN_SIZE], dropout_r=cfg.DROPOUT_R)
        if atten:
            self.dropout = nn.Dropout(cfg.CLASSIFER_DROPOUT_R)
            self.h_mat = nn.Parameter(torch.Tensor(1, cfg.GLIMPSE, 1, cfg.BA_HIDDEN_SIZE).normal_())
            self.h_bias = nn.Parameter(torch.Tensor(1, cfg.GLIMPSE, 1, 1).normal_())
        else:
            self.p_net = nn.AvgPool1d(cfg.K_TIMES, stride=cfg.K_TIMES)

    def forward(self, v, q):
        """Attention logits (B, G, K, L) = h_mat_g . (v_net(v)_k * q_net(q)_l) + h_bias_g."""
        v_ = self.dropout(self.v_net(v))
        q_ = self.q_net(q)
        return torch.einsum("xhyk,bvk,bqk->bhvq", self.h_mat, v_, q_) + self.h_bias

    def forward_with_weights(self, v, q, w):
        """One glimpse's joint vector (B, D): sum_kl v_net(v)_k * w_kl * q_net(q)_l, windows of K_TIMES summed."""
        v_ = self.v_net(v)
        q_ = self.q_net(q)
        joint = torch.einsum("bvk,bvq,bqk->bk", v_, w, q_).unsqueeze(1)  # (B, 1, K_TIMES * D)
        return self.p_net(joint).squeeze(1) * self.k_times


class BiAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.glimpses = cfg.GLIMPSE
        self.logits = weight_norm(BC(cfg, True), name="h_mat", dim=None)

    def forward(self, v, q, v_mask=True):
        """Maps (B, G, K, L), softmax over all K * L pairs; all-zero rows of v masked (−inf)."""
        logits = self.logits(v, q)
        if v_mask:
            zero_rows = (v.abs().sum(2) == 0)[:, None, :, None]
            logits = logits.masked_fill(zero_rows.expand(logits.shape), -float("inf"))
        B, G, K, L = logits.shape
        p = nn.functional.softmax(logits.view(-1, self.glimpses, K * L), 2)
        return p.view(-1, self.glimpses, K, L), logits


class BAN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.glimpses = cfg.GLIMPSE
        self.BiAtt = BiAttention(cfg)
        self.b_net = nn.ModuleList([BC(cfg) for _ in range(cfg.GLIMPSE)])
        self.q_prj = nn.ModuleList([MLP([cfg.HIDDEN_SIZE, cfg.HIDDEN_SIZE], "", cfg.DROPOUT_R)
                                    for _ in range(cfg.GLIMPSE)])

    def forward(self, q, v):
        """Residual glimpses: q (B, L, D) += q_prj_g(b_net_g(v, q, att_g)) broadcast over L (no ReLU)."""
        att, _ = self.BiAtt(v, q)
        for g in range(self.glimpses):
            joint = self.b_net[g].forward_with_weights(v, q, att[:, g, :, :])
            q = self.q_prj[g](joint.unsqueeze(1)) + q
        return q, att


class Adapter(nn.Module):
    """VQA: no parameters, features unchanged. GQA: bbox_linear on the 5-d box feature, concatenated
    to the features, frcn_linear to HIDDEN_SIZE (so padded rows are no longer zero, and BiAttention
    does not mask them)."""

    def __init__(self, cfg):
        super().__init__()
        self.dataset = cfg.DATASET
        if cfg.DATASET == "gqa":
            in_size = cfg.FRCN_FEAT_SIZE
            if cfg.USE_BBOX_FEAT:
                self.bbox_linear = nn.Linear(5, cfg.BBOXFEAT_EMB_SIZE)
                in_size += cfg.BBOXFEAT_EMB_SIZE
            self.frcn_linear = nn.Linear(in_size, cfg.HIDDEN_SIZE)
            if cfg.USE_AUX_FEAT:  # built by OpenVQA's gqa_init, never used by BAN's forward
                self.grid_linear = nn.Linear(cfg.GRID_FEAT_SIZE, cfg.HIDDEN_SIZE)

    def forward(self, frcn_feat, grid_feat, bbox_feat):
        if self.dataset == "vqa":
            return frcn_feat
        if hasattr(self, "bbox_linear"):
            frcn_feat = torch.cat((frcn_feat, self.bbox_linear(bbox_feat)), dim=-1)
        return self.frcn_linear(frcn_feat)


class Net(nn.Module):
    """OpenVQA's BAN. forward(frcn_feat (B, K, Dv), grid_feat (unused), bbox_feat (B, K, 5) for GQA,
    ques_ix (B, L)) -> logits (B, A) and the attention maps (B, G, K, L) (OpenVQA returns the logits)."""

    def __init__(self, cfg, token_size, answer_size):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings=token_size, embedding_dim=cfg.WORD_EMBED_SIZE)
        self.rnn = nn.GRU(input_size=cfg.WORD_EMBED_SIZE, hidden_size=cfg.HIDDEN_SIZE, num_layers=1,
                          batch_first=True)
        self.adapter = Adapter(cfg)
        self.backbone = BAN(cfg)
        self.classifer = nn.Sequential(
            weight_norm(nn.Linear(cfg.HIDDEN_SIZE, cfg.FLAT_OUT_SIZE), dim=None), nn.ReLU(),
            nn.Dropout(cfg.CLASSIFER_DROPOUT_R, inplace=True),
            weight_norm(nn.Linear(cfg.FLAT_OUT_SIZE, answer_size), dim=None))

    def forward(self, frcn_feat, grid_feat, bbox_feat, ques_ix):
        lang_feat, _ = self.rnn(self.embedding(ques_ix))  # every position, PAD included
        img_feat = self.adapter(frcn_feat, grid_feat, bbox_feat)
        lang_feat, att = self.backbone(lang_feat, img_feat)
        return self.classifer(lang_feat.sum(1)), att  # the classifier reads the sum of all L positions


def fold_weight_norm(model):
    """Replace every weight-normalised tensor by its plain value g * v / ||v|| (what an exporter stores)."""
    for module in model.modules():
        for name in ("weight", "h_mat"):
            if hasattr(module, name + "_g"):
                torch.nn.utils.remove_weight_norm(module, name)
    return model


# ---- checkpoints ---------------------------------------------------------------------------------

CheckpointError = torchfile.CheckpointError


def read_checkpoint(path):
    """An OpenVQA checkpoint ({'state_dict', 'optimizer', 'lr_base', 'epoch'}, either serialisation)
    read by the project's unpickler, which builds only dicts and tensors (PyTorch 1.13's torch.load
    ignores its pickle_module argument and would run a hostile pickle's code): (state_dict as torch
    tensors without `module.` prefixes, the whole checkpoint with numpy arrays, prefixed?)."""
    ckpt = torchfile.load_checkpoint(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError("%s: not an OpenVQA checkpoint (no 'state_dict')" % path)
    sd = ckpt["state_dict"]
    prefixed = bool(sd) and all(isinstance(k, str) and k.startswith("module.") for k in sd)
    strip = len("module.") if prefixed else 0  # nn.DataParallel's prefix (utils/test_engine.py ckpt_proc)
    state = collections.OrderedDict()
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, np.ndarray):
            raise CheckpointError("%s: state_dict entry %r is not a named tensor" % (path, k))
        state[k[strip:]] = torch.from_numpy(np.array(v))
    return state, ckpt, prefixed


def expected_shapes(cfg, token_size, answers):
    """{parameter name: shape} of Net(cfg, token_size, answers), to check a state_dict against before
    building the model (so that nothing is allocated beyond what the file holds)."""
    H, BA, G = cfg.HIDDEN_SIZE, cfg.BA_HIDDEN_SIZE, cfg.GLIMPSE
    shapes = {"embedding.weight": (token_size, cfg.WORD_EMBED_SIZE)}
    for kind, d_in in (("ih", cfg.WORD_EMBED_SIZE), ("hh", H)):
        shapes.update({"rnn.weight_%s_l0" % kind: (3 * H, d_in), "rnn.bias_%s_l0" % kind: (3 * H,)})

    def linear(name, d_out, d_in, normed=True):
        shapes[name + ".bias"] = (d_out,)
        if normed:
            shapes.update({name + ".weight_g": (), name + ".weight_v": (d_out, d_in)})
        else:
            shapes[name + ".weight"] = (d_out, d_in)

    if cfg.DATASET == "gqa":
        if cfg.USE_BBOX_FEAT:
            linear("adapter.bbox_linear", cfg.BBOXFEAT_EMB_SIZE, 5, normed=False)
        linear("adapter.frcn_linear", H, cfg.FRCN_FEAT_SIZE + cfg.BBOXFEAT_EMB_SIZE, normed=False)
        if cfg.USE_AUX_FEAT:
            linear("adapter.grid_linear", H, cfg.GRID_FEAT_SIZE, normed=False)
    att = "backbone.BiAtt.logits."
    shapes.update({att + "h_bias": (1, G, 1, 1), att + "h_mat_g": (), att + "h_mat_v": (1, G, 1, BA)})
    for bc in [att] + ["backbone.b_net.%d." % g for g in range(G)]:
        linear(bc + "v_net.mlp.1", BA, cfg.IMG_FEAT_SIZE)
        linear(bc + "q_net.mlp.1", BA, H)
    for g in range(G):
        linear("backbone.q_prj.%d.mlp.1" % g, H, H)
    linear("classifer.0", cfg.FLAT_OUT_SIZE, H)
    linear("classifer.3", answers, cfg.FLAT_OUT_SIZE)
    return shapes


def config_from_state_dict(sd):
    """(Cfg, token_size, answer_size) from the shapes of an OpenVQA BAN state_dict, every parameter
    checked against them."""
    def shape(key, rank):
        if key not in sd:
            raise CheckpointError("not an OpenVQA BAN state_dict: no %s" % key)
        if sd[key].dim() != rank or 0 in sd[key].shape:
            raise CheckpointError("%s has shape %s" % (key, tuple(sd[key].shape)))
        return tuple(sd[key].shape)

    token_size, word_embed = shape("embedding.weight", 2)
    hidden = shape("rnn.weight_hh_l0", 2)[1]
    _, glimpses, _, ba_hidden = shape("backbone.BiAtt.logits.h_mat_v", 4)
    if ba_hidden % hidden:
        raise CheckpointError("attention width %d is not a multiple of the hidden size %d" % (ba_hidden, hidden))
    img_feat = shape("backbone.BiAtt.logits.v_net.mlp.1.weight_v", 2)[1]
    flat_out = shape("classifer.0.weight_v", 2)[0]
    answers = shape("classifer.3.weight_v", 2)[0]
    if "adapter.frcn_linear.weight" in sd:
        bbox_emb = shape("adapter.bbox_linear.weight", 2)[0] if "adapter.bbox_linear.weight" in sd else 0
        aux = shape("adapter.grid_linear.weight", 2)[1] if "adapter.grid_linear.weight" in sd else 0
        feat = shape("adapter.frcn_linear.weight", 2)[1] - bbox_emb
        if feat < 1:
            raise CheckpointError("adapter.frcn_linear reads %d values, fewer than the box embedding's %d"
                                  % (feat + bbox_emb, bbox_emb))
        cfg = Cfg("gqa", hidden, glimpses, ba_hidden // hidden, feat, flat_out, bbox_emb, aux, word_embed)
    else:
        cfg = Cfg("vqa", hidden, glimpses, ba_hidden // hidden, img_feat, flat_out, word_embed=word_embed)
    expected = expected_shapes(cfg, token_size, answers)
    for key in sd:
        if key not in expected:
            raise CheckpointError("not an OpenVQA BAN state_dict of %d glimpses: unexpected %s" % (glimpses, key))
    for key, want in expected.items():
        if key not in sd:
            raise CheckpointError("not an OpenVQA BAN state_dict of %d glimpses: no %s" % (glimpses, key))
        if tuple(sd[key].shape) != want:
            raise CheckpointError("%s has shape %s, the configuration needs %s" % (key, tuple(sd[key].shape), want))
    return cfg, token_size, answers


def load_model(path):
    """The checkpoint's model in eval mode, and {'cfg', 'token_size', 'answers', 'prefixed', 'checkpoint'}."""
    sd, ckpt, prefixed = read_checkpoint(path)
    try:
        cfg, token_size, answers = config_from_state_dict(sd)
    except CheckpointError as e:
        raise CheckpointError("%s: %s" % (path, e))
    model = Net(cfg, token_size, answers)
    model.load_state_dict(sd, strict=True)
    return model.eval(), {"cfg": cfg, "token_size": token_size, "answers": answers, "prefixed": prefixed,
                          "checkpoint": ckpt}


# ---- questions, vocabularies, answers, boxes (openvqa/datasets) -------------------------------------

def tokenize(question):
    """OpenVQA's words: lower-case, delete .,'!?"()*#:; then - and / to spaces, split on whitespace."""
    return PUNCTUATION.sub("", question.lower()).replace("-", " ").replace("/", " ").split()


def vqa_vocabulary(question_files):
    """vqa_loader.tokenize: PAD 0, UNK 1, CLS 2, then each new word of the files' questions in order
    (OpenVQA reads train, val, test, vg)."""
    token_to_ix = {"PAD": 0, "UNK": 1, "CLS": 2}
    for path in question_files:
        with open(path) as f:
            for ques in json.load(f)["questions"]:
                for word in tokenize(ques["question"]):
                    if word not in token_to_ix:
                        token_to_ix[word] = len(token_to_ix)
    return token_to_ix


def gqa_dicts(path):
    """dicts.json = [ans_to_ix, ix_to_ans, token_to_ix, max_token]."""
    with open(path) as f:
        ans_to_ix, ix_to_ans, token_to_ix, max_token = json.load(f)
    return ans_to_ix, ix_to_ans, token_to_ix, max_token


def vqa_answers(path):
    """answer_dict.json = [ans_to_ix, ix_to_ans], ix_to_ans keyed by strings."""
    with open(path) as f:
        ans_to_ix, ix_to_ans = json.load(f)
    return ans_to_ix, ix_to_ans


def question_ids(question, token_to_ix, max_token):
    """proc_ques: (max_token,) int64, unknown words UNK, PAD (0) after the last word, truncated."""
    ids = np.zeros(max_token, np.int64)
    for i, word in enumerate(tokenize(question)[:max_token]):
        ids[i] = token_to_ix.get(word, token_to_ix["UNK"])
    return ids


def pad_rows(x, rows):
    """proc_img_feat: the first `rows` rows of x, zero rows appended up to `rows`."""
    x = x[:rows]
    return np.pad(x, ((0, rows - x.shape[0]), (0, 0)), mode="constant", constant_values=0)


def gqa_box_features(bbox, height, width):
    """The 5-d box feature of the model zoo's gqa_loader.proc_bbox_feat (float32): x1/w, y1/h, x2/w,
    y2/h, area/(w h) (OpenVQA's last commit drops the fifth, which the released models were trained with)."""
    bbox = np.asarray(bbox, np.float32)
    feat = np.zeros((bbox.shape[0], 5), dtype=np.float32)
    feat[:, 0] = bbox[:, 0] / float(width)
    feat[:, 1] = bbox[:, 1] / float(height)
    feat[:, 2] = bbox[:, 2] / float(width)
    feat[:, 3] = bbox[:, 3] / float(height)
    feat[:, 4] = (bbox[:, 2] - bbox[:, 0]) * (bbox[:, 3] - bbox[:, 1]) / float(height * width)
    return feat


# ---- cases: the golden fixtures' files -------------------------------------------------------------

def case_inputs(prefix):
    """A case's inputs as OpenVQA's loaders make them: frcn (B, K, Dv), bbox (B, K, 5) for GQA (from the
    pixel boxes, padded with zero rows), q (B, L) from the json's questions and the case's vocabulary,
    and the answer list."""
    with open(prefix + ".json") as f:
        meta = json.load(f)
    z = np.load(prefix + ".npz")
    B, K = z["frcn"].shape[:2]
    if meta["dataset"] == "vqa":
        files = [os.path.join(prefix + ".questions", s + ".json") for s in ("train", "val", "test", "vg")]
        token_to_ix, max_token = vqa_vocabulary(files), VQA_MAX_TOKEN
        _, ix_to_ans = vqa_answers(prefix + ".answer_dict.json")
        bbox = z["bbox_pixels"]
    else:
        _, ix_to_ans, token_to_ix, max_token = gqa_dicts(prefix + ".dicts.json")
        bbox = np.stack([pad_rows(gqa_box_features(z["bbox_pixels"][b, :n], *z["image_hw"][b]), K)
                         for b, n in enumerate(meta["box_counts"])])
    q = np.stack([question_ids(text, token_to_ix, max_token) for text in meta["questions"]])
    answers = [ix_to_ans[str(i)] for i in range(len(ix_to_ans))]
    return {"meta": meta, "npz": z, "frcn": z["frcn"], "bbox": bbox, "q": q, "answers": answers,
            "token_to_ix": token_to_ix, "max_token": max_token}


def run_case(prefix, fold=False):
    """The case's checkpoint on its inputs: (inputs, logits (B, A), att (B, G, K, L), predicted answers)."""
    inputs = case_inputs(prefix)
    model, info = load_model(prefix + ".pkl")
    if len(inputs["token_to_ix"]) != info["token_size"] or len(inputs["answers"]) != info["answers"]:
        raise CheckpointError("%s: the vocabulary has %d words and %d answers, the checkpoint %d and %d"
                              % (prefix, len(inputs["token_to_ix"]), len(inputs["answers"]), info["token_size"],
                                 info["answers"]))
    if fold:
        fold_weight_norm(model)
    with torch.no_grad():
        logits, att = model(torch.from_numpy(inputs["frcn"]), None, torch.from_numpy(inputs["bbox"]),
                            torch.from_numpy(inputs["q"]))
    predicted = [inputs["answers"][i] for i in logits.argmax(1).tolist()]
    return inputs, logits.numpy(), att.numpy(), predicted


WORDS = ("what color is the shirt man wearing how many people are there in picture does this have a dog on table "
         "which side of cat sitting where kind animal shown room it sunny outside bus red number written sign who "
         "holding umbrella to sport these zebras playing left today bench kite woman").split()
ANSWERS = ("yes no 2 1 3 white red blue black tennis dog cat left right table kitchen umbrella 0 4 green baseball "
           "man woman bus sign sunny zebra frisbee pizza skiing grass water snow brown yellow wood metal").split()
EVAL_QUESTIONS = [
    "What color is the man's shirt?", "How many people are there in the picture?",
    "Does this have a DOG on the table?", "Which side of the table is the cat sitting on?",
    "Is the red-and-white bus (left) on the table/sign?", "How many dogs: one, two or three?",
    "What sport are these zebras playing on the left side of the picture today, near the bench?",
    "Who is holding the #1 umbrella; the woman?", "Where is the kite?", "Is it sunny outside?"]


def _random_questions(rng, n, words):
    out = []
    for _ in range(n):
        ws = [words[i] for i in rng.randint(0, len(words), rng.randint(2, 9))]
        out.append(" ".join(ws).capitalize() + "?")
    return out


def _vqa_questions_file(split, texts):
    return {"info": {}, "license": {}, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": split,
            "questions": [{"image_id": 1000 + i, "question": t, "question_id": (1000 + i) * 1000 + i}
                          for i, t in enumerate(texts)]}


def _optimizer_state(model, optimizer, era):
    """optimizer.state_dict() as PyTorch 1.13 writes it, or as PyTorch 1.1 (the model zoo's) did:
    parameters named by id(), `step` a Python int, no foreach / maximize."""
    state = optimizer.state_dict()
    if era == "torch1.13":
        return state
    ids = [id(p) for p in model.parameters()]
    groups = [{k: v for k, v in g.items() if k not in ("foreach", "maximize", "params")} for g in state["param_groups"]]
    for g, old in zip(groups, state["param_groups"]):
        g["params"] = [ids[i] for i in old["params"]]
    packed = {ids[i]: {"step": int(s["step"]), "exp_avg": s["exp_avg"], "exp_inf": s["exp_inf"]}
              for i, s in state["state"].items()}
    return {"state": packed, "param_groups": groups}


def _train(model, cfg, answers, token_size, max_token, steps, rng):
    """A few steps of OpenVQA's train engine on random data: Adamax(lr=0, betas (0.9, 0.999), eps 1e-9)
    as get_optim builds it, the warm-up rate, sum-reduced BCE (VQA) or cross-entropy (GQA), grad clip 0.25."""
    lr_base, batch = 0.002, 8
    optimizer = torch.optim.Adamax(filter(lambda p: p.requires_grad, model.parameters()), lr=0,
                                   betas=(0.9, 0.999), eps=1e-9, weight_decay=0)
    model.train()
    # PyTorch 1.13's autograd refuses OpenVQA's in-place classifier dropout on the ReLU's output
    model.classifer[2].inplace = False
    K = 10
    for step in range(1, steps + 1):
        for group in optimizer.param_groups:  # WarmupOptimizer's 1/4, 2/4, 3/4 of lr_base (WARMUP_EPOCH 3), then all
            group["lr"] = lr_base * min(4, 1 + (step - 1) * 4 // steps) / 4
        optimizer.zero_grad()
        frcn = torch.from_numpy(np.maximum(rng.randn(batch, K, cfg.FRCN_FEAT_SIZE), 0).astype(np.float32))
        bbox = torch.from_numpy(rng.rand(batch, K, 5).astype(np.float32))
        q = torch.from_numpy(rng.randint(0, token_size, (batch, max_token)).astype(np.int64))
        logits, _ = model(frcn, None, bbox, q)
        if cfg.DATASET == "vqa":
            target = torch.from_numpy((rng.rand(batch, answers) < 0.1).astype(np.float32) * 0.9)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        else:
            loss = nn.functional.cross_entropy(logits, torch.from_numpy(rng.randint(0, answers, batch)),
                                               reduction="sum")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
    model.classifer[2].inplace = True
    return optimizer, lr_base


def _atomic_write(path, write):
    """write(tmp) then rename to path; tmp has path's file name (torch.save names the zip's records after it)."""
    tmpdir = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-")
    try:
        tmp = os.path.join(tmpdir, os.path.basename(path))
        write(tmp)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmpdir)


def _write_json(path, obj, indent=None):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent)
    _atomic_write(path, write)


def make_case(args):
    if args.dataset == "gqa" and args.bbox_emb < 0:
        sys.exit("make-case: --bbox-emb must be >= 0")
    for name in ("hidden", "glimpses", "k_times", "feat_dim", "answers", "boxes", "batch", "max_token", "train_steps"):
        if getattr(args, name) < 1:
            sys.exit("make-case: --%s must be positive" % name.replace("_", "-"))
    if args.answers > len(ANSWERS) * 100:
        sys.exit("make-case: at most %d answers" % (len(ANSWERS) * 100))
    rng = np.random.RandomState(args.seed)
    torch.manual_seed(args.seed)
    prefix = args.output
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    answers = [ANSWERS[i % len(ANSWERS)] + ("" if i < len(ANSWERS) else str(i // len(ANSWERS)))
               for i in range(args.answers)]
    ans_to_ix = {a: i for i, a in enumerate(answers)}
    ix_to_ans = {str(i): a for i, a in enumerate(answers)}
    questions = [EVAL_QUESTIONS[i % len(EVAL_QUESTIONS)] for i in range(args.batch)]
    hidden = args.hidden
    if args.dataset == "vqa":
        # the vocabulary is built from these four files; half the evaluated questions are in val (as the
        # questions OpenVQA answers are in its files), the others bring words it has never seen (UNK)
        files = {"train": _random_questions(rng, 12, WORDS[:30]), "val": _random_questions(rng, 4, WORDS[:30]),
                 "test": _random_questions(rng, 3, WORDS[:36]), "vg": _random_questions(rng, 5, WORDS[:40])}
        files["val"] += questions[: (args.batch + 1) // 2]
        qdir = prefix + ".questions"
        os.makedirs(qdir, exist_ok=True)
        for split, texts in files.items():
            _write_json(os.path.join(qdir, split + ".json"), _vqa_questions_file(split, texts))
        token_to_ix = vqa_vocabulary([os.path.join(qdir, s + ".json") for s in ("train", "val", "test", "vg")])
        max_token = VQA_MAX_TOKEN
        cfg = Cfg("vqa", hidden, args.glimpses, args.k_times, args.feat_dim, args.flat_out or 2 * hidden)
    else:
        token_to_ix = {"PAD": 0, "UNK": 1, "CLS": 2}
        for w in WORDS[:43]:
            token_to_ix.setdefault(w, len(token_to_ix))
        max_token = args.max_token
        _write_json(prefix + ".dicts.json", [ans_to_ix, ix_to_ans, token_to_ix, max_token])
        cfg = Cfg("gqa", hidden, args.glimpses, args.k_times, args.feat_dim, args.flat_out or 2 * hidden,
                  args.bbox_emb)
    model = Net(cfg, len(token_to_ix), args.answers)
    with torch.no_grad():  # GloVe-sized word vectors instead of N(0, 1)
        model.embedding.weight.mul_(0.4)
    optimizer, lr_base = _train(model, cfg, args.answers, len(token_to_ix), max_token, args.train_steps, rng)
    model.eval()

    B, K = args.batch, args.boxes
    counts = [K] + [int(c) for c in rng.randint(max(1, K // 2), K + 1, B - 1)]
    image_hw = np.stack([300 + 37 * np.arange(B), 400 + 53 * np.arange(B)], 1).astype(np.float32)
    frcn = np.zeros((B, K, args.feat_dim), np.float32)
    pixels = np.zeros((B, K, 4), np.float32)
    for b, n in enumerate(counts):
        h, w = image_hw[b]
        frcn[b, :n] = np.maximum(rng.randn(n, args.feat_dim), 0) + 0.01
        x1, y1 = rng.rand(n) * w * 0.7, rng.rand(n) * h * 0.7
        pixels[b, :n] = np.stack([x1, y1, x1 + rng.rand(n) * (w - x1), y1 + rng.rand(n) * (h - y1)], 1)
    npz = {"frcn": frcn, "bbox_pixels": pixels, "image_hw": image_hw}
    bbox = pixels
    if args.dataset == "gqa":
        bbox = np.stack([pad_rows(gqa_box_features(pixels[b, :n], *image_hw[b]), K) for b, n in enumerate(counts)])
        npz["bbox"] = bbox
    q = np.stack([question_ids(t, token_to_ix, max_token) for t in questions])
    with torch.no_grad():
        logits, att = model(torch.from_numpy(frcn), None, torch.from_numpy(bbox), torch.from_numpy(q))
    npz.update(q=q, logits=logits.numpy(), att=att.numpy())
    predicted = [answers[i] for i in logits.argmax(1).tolist()]

    sd = model.state_dict()
    if args.module_prefix:
        sd = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    ckpt = {"state_dict": sd, "optimizer": _optimizer_state(model, optimizer, args.optimizer_state),
            "lr_base": lr_base, "epoch": 13}
    legacy = args.serialisation == "legacy"
    _atomic_write(prefix + ".pkl", lambda tmp: torch.save(ckpt, tmp, _use_new_zipfile_serialization=not legacy))
    _atomic_write(prefix + ".npz", lambda tmp: np.savez(open(tmp, "wb"), **npz))
    if args.dataset == "vqa":
        _write_json(prefix + ".answer_dict.json", [ans_to_ix, ix_to_ans])
    meta = {"framework": "openvqa", "dataset": args.dataset, "vocab_size": len(token_to_ix),
            "frcn_dim": args.feat_dim}
    if args.dataset == "gqa":
        meta["bbox_emb"] = args.bbox_emb
    meta.update({"n_answers": args.answers, "hidden": hidden, "glimpse": args.glimpses, "k_times": args.k_times,
                 "flat_out": cfg.FLAT_OUT_SIZE, "batch": B, "boxes": K, "max_token": max_token,
                 "box_counts": counts, "questions": questions, "predicted_answers": predicted})
    if args.dataset == "gqa":
        meta["note"] = ("padded boxes are NOT masked in OpenVQA's GQA BAN: the adapter's linear layers run before "
                        "BiAttention looks for all-zero rows, so the padding (to K rows) takes part in attention")
    meta.update({"parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
                 "multi_gpu_keys": args.module_prefix, "serialisation": args.serialisation,
                 "optimizer_state": args.optimizer_state, "seed": args.seed})
    _write_json(prefix + ".json", meta, indent=1)
    print("%s: %s, H %d, %d glimpses, K_TIMES %d, Dv %d, %d answers, %d boxes, %d parameters, answers %s"
          % (prefix, args.dataset, hidden, args.glimpses, args.k_times, args.feat_dim, args.answers, K,
             meta["parameters"], predicted))


def check_case(args):
    inputs, logits, att, predicted = run_case(args.case)
    z, meta = inputs["npz"], inputs["meta"]
    report = {"q_equal": bool(np.array_equal(inputs["q"], z["q"])),
              "logits_max_abs": float(np.abs(logits - z["logits"]).max()),
              "att_max_abs": float(np.abs(att - z["att"]).max()),
              "answers_equal": predicted == meta["predicted_answers"]}
    if "bbox" in z:
        report["bbox_max_abs"] = float(np.abs(inputs["bbox"] - z["bbox"]).max())
    print(json.dumps(report))
    ok = report["q_equal"] and report["answers_equal"] and report["logits_max_abs"] <= 1e-4 \
        and report["att_max_abs"] <= 1e-5
    return 0 if ok else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="openvqa_torch.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make-case", help="a checkpoint, its inputs and outputs, in the fixtures' files")
    mk.add_argument("--dataset", choices=["vqa", "gqa"], required=True)
    mk.add_argument("--hidden", type=int, required=True, help="HIDDEN_SIZE")
    mk.add_argument("--glimpses", type=int, required=True, help="GLIMPSE")
    mk.add_argument("--k-times", type=int, required=True, help="K_TIMES (the rank of every bilinear map)")
    mk.add_argument("--feat-dim", type=int, required=True, help="Dv, the box features' size")
    mk.add_argument("--answers", type=int, required=True)
    mk.add_argument("--boxes", type=int, required=True, help="K, the rows the features are padded to")
    mk.add_argument("--bbox-emb", type=int, default=16, help="GQA: BBOXFEAT_EMB_SIZE (0: no box feature)")
    mk.add_argument("--flat-out", type=int, default=0, help="FLAT_OUT_SIZE (default 2 * hidden)")
    mk.add_argument("--batch", type=int, default=6, help="questions in the case (<= 10 distinct)")
    mk.add_argument("--max-token", type=int, default=20, help="GQA: max_token of dicts.json (VQA: 14)")
    mk.add_argument("--module-prefix", action="store_true", help="keys saved from nn.DataParallel (module.)")
    mk.add_argument("--serialisation", choices=["zip", "legacy"], default="zip")
    mk.add_argument("--optimizer-state", choices=["torch1.13", "torch1.1"], default="torch1.13",
                    help="the optimizer state as this PyTorch writes it, or as PyTorch 1.1 did (the model zoo's "
                         "2019 files: parameters named by id, step an int)")
    mk.add_argument("--train-steps", type=int, default=4, help="Adamax steps before saving")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--output", required=True, help="DIR/NAME: the files' common prefix")
    ck = sub.add_parser("check-case", help="rerun a case: max differences, exit 1 beyond the tolerances")
    ck.add_argument("case", help="DIR/NAME")
    args = ap.parse_args(argv)
    if args.cmd == "make-case":
        return make_case(args) or 0
    try:
        return check_case(args)
    except (CheckpointError, OSError, KeyError, ValueError) as e:  # a missing or malformed file of the case
        print("openvqa_torch: %s: %s" % (args.case, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
