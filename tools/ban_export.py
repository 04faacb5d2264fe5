#!/usr/bin/python3
"""Export a BAN checkpoint (the reference implementation's, OpenVQA's, or this project's) to a ban.h model file.

    python3 tools/ban_export.py CHECKPOINT [--dictionary dictionary.pkl]
        [--answers trainval_label2ans.pkl] --output MODEL.ban               # jnhwkim/ban-vqa
    python3 tools/ban_export.py epoch13.pkl --vocab-questions train.json val.json test.json vg.json
        --answers answer_dict.json --output ban8.ban                         # OpenVQA, VQA-v2
    python3 tools/ban_export.py epoch11.pkl --dicts dicts.json [--pad-boxes 100] --output ban8-gqa.ban
                                                                             # OpenVQA, GQA

Reads both PyTorch layouts (zip and legacy) without PyTorch, through an interpreter of
pickles that can only build tensors and plain data (see tools/torchfile.py). The whole
configuration is inferred from the tensor shapes: vocabulary, feature size, hidden size,
glimpses, answers, one or two embedding tables, counter, VQA or grounding. Weight normalisation
is folded into plain weights. The framework is recognised from the checkpoint (the
reference's {'model_state'} or a bare state dict, OpenVQA's {'state_dict', 'optimizer', ...})
and its parameter names; 'module.' prefixes are stripped; an optimizer state beside the
weights is read safely and ignored. What the shapes cannot tell is given by options that
default to the framework's conventions (the reference: questions padded to 14 tokens,
padding not masked, padded boxes are all-zero feature rows; OpenVQA: its tokenizer and
vocabularies, and for GQA the box count its padding reaches) and is recorded in the file.
The output is written atomically (temporary file, then rename; tools/banfile.py). Every
failure, whatever the input, is one line "ban_export: error: ..." and exit status 2.
"""
import argparse
import os
import re
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import banfile  # noqa: E402
import openvqa  # noqa: E402
from torchfile import CheckpointError, describe, load_pickle, load_state_dict, open_regular  # noqa: E402

EXPORTER = "ban_export.py 1"


class ExportError(Exception):
    pass


def find_state_dict(obj, path):
    """The model's state dict inside a checkpoint object, keys without 'module.'."""
    sd = obj
    if isinstance(obj, dict):
        for key in ("model_state", "state_dict", "model"):
            if isinstance(obj.get(key), dict):
                sd = obj[key]
                break
    if not isinstance(sd, dict) or not sd:
        raise ExportError("%s: no state dict found (expected a dict of tensors or {'model_state': ...})" % path)
    out = {}
    for k, v in sd.items():
        if not isinstance(k, str):
            raise ExportError("%s: state dict key %r is not a string" % (path, k))
        name = k[len("module."):] if k.startswith("module.") else k
        if not isinstance(v, np.ndarray):
            raise ExportError("%s: %r is not a tensor (%s)" % (path, k, type(v).__name__))
        if name in out:
            raise ExportError("%s: %r appears twice (with and without 'module.')" % (path, name))
        out[name] = v
    return out


class StateDict:
    """Tensor access by name that remembers what was used and checks shapes."""

    def __init__(self, sd, path):
        self.sd, self.path, self.used = sd, path, set()

    def has(self, name):
        return name in self.sd

    def get(self, name, ndim=None):
        if name not in self.sd:
            raise ExportError("%s: tensor %r is missing" % (self.path, name))
        arr = self.sd[name]
        if ndim is not None and arr.ndim != ndim:
            raise ExportError("%s: %r has shape %s, expected %d dimensions" % (self.path, name, arr.shape, ndim))
        if arr.dtype.kind != "f":
            raise ExportError("%s: %r has dtype %s, expected floating point" % (self.path, name, arr.dtype))
        if not np.all(np.isfinite(arr)):
            raise ExportError("%s: %r holds NaN or infinite values" % (self.path, name))
        self.used.add(name)
        return arr.astype(np.float32)

    def prefixed(self, prefix):
        return sorted(k for k in self.sd if k.startswith(prefix))

    def weight(self, prefix):
        """A weight that may be weight-normalised: prefix + 'weight', or '_g' and '_v'.
        weight = g * v / ||v||, the norm over the whole tensor (dim=None, a scalar g)
        or over every dimension but the first (a g of shape (out, 1, ...))."""
        if self.has(prefix + "_v") or self.has(prefix + "_g"):
            v = self.get(prefix + "_v")
            g = self.get(prefix + "_g")
            if g.size == 1:
                norm = np.float32(np.sqrt(np.sum(v.astype(np.float64) ** 2)))
                if norm == 0:
                    raise ExportError("%s: %s_v is all zeros: weight normalisation divides by its norm" % (self.path,
                                                                                                          prefix))
                scale = np.float32(g.reshape(())) / norm
                return (v * scale).astype(np.float32)
            if g.shape[0] != v.shape[0] or g.size != v.shape[0]:
                raise ExportError("%s: %s_g has shape %s for %s_v of shape %s" % (self.path, prefix, g.shape,
                                                                                  prefix, v.shape))
            norm = np.sqrt(np.sum(v.astype(np.float64) ** 2, axis=tuple(range(1, v.ndim)), keepdims=True))
            if np.any(norm == 0):
                raise ExportError("%s: %s_v has an all-zero row: weight normalisation divides by its norm"
                                  % (self.path, prefix))
            return (v * (g.reshape((-1,) + (1,) * (v.ndim - 1)) / norm.astype(np.float32))).astype(np.float32)
        return self.get(prefix)

    def linear(self, prefix, sequence="main"):
        """The single Linear layer of a sequence of layers (prefix.<sequence>.<i>: the reference's
        FCNet.main, OpenVQA's MLP.mlp) or a plain one; (W (out, in), b (out))."""
        inner = "%s.%s." % (prefix, sequence)
        if self.prefixed(inner):
            idx = sorted({int(m.group(1)) for k in self.prefixed(inner)
                          for m in [re.match(re.escape(inner) + r"(\d+)\.", k)] if m})
            if len(idx) != 1:
                raise ExportError("%s: %s has %d linear layers; ban.h runs one per projection" % (self.path,
                                                                                               prefix, len(idx)))
            prefix = "%s%d" % (inner, idx[0])
        w = self.weight(prefix + ".weight")
        if w.ndim != 2:
            raise ExportError("%s: %s.weight has shape %s, expected (out, in)" % (self.path, prefix, w.shape))
        b = self.get(prefix + ".bias", 1) if self.has(prefix + ".bias") else np.zeros(w.shape[0], np.float32)
        if b.shape != (w.shape[0],):
            raise ExportError("%s: %s.bias has shape %s for a weight of shape %s" % (self.path, prefix, b.shape,
                                                                                     w.shape))
        return w, b


def expect(cond, msg):
    if not cond:
        raise ExportError(msg)


CONV, RELU, MAXPOOL = 1, 2, 3  # encoder layer kinds (docs/FORMAT.md)


def convert_encoder(S, spec, path):
    """The image encoder of a checkpoint (tools/train_easyvqa.py): metadata, tensors, output channels."""
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list):
        raise ExportError("%s: the checkpoint's 'encoder' entry must hold a list of layers" % path)
    layers = spec["layers"]
    size = spec.get("image_size")
    size = [size, size] if isinstance(size, int) else size
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(x, int) and x > 0 for x in size)):
        raise ExportError("%s: the encoder's image_size must be a positive integer or [height, width]" % path)
    expect(not S.prefixed("encoder.norms."), "%s: the encoder still has batch norm layers: fold them into the "
           "convs first (GridEncoder.fold_batch_norm)" % path)
    T = {"encoder.input_affine": S.get("encoder.input_affine", 2)}
    expect(T["encoder.input_affine"].shape == (2, 3), "%s: encoder.input_affine must be (2, 3)" % path)
    flat, channels, conv = [], 3, 0
    for i, layer in enumerate(layers):
        if not (isinstance(layer, (list, tuple)) and len(layer) == 5 and all(isinstance(x, int) for x in layer)):
            raise ExportError("%s: encoder layer %d is not 5 integers (kind, out, kernel, stride, padding)" % (path, i))
        kind, out, k, stride, pad = layer
        expect(kind in (CONV, RELU, MAXPOOL), "%s: encoder layer %d has unknown kind %d" % (path, i, kind))
        if kind == CONV:
            w = S.get("encoder.convs.%d.weight" % conv, 4)
            b = S.get("encoder.convs.%d.bias" % conv, 1)
            expect(w.shape == (out, channels, k, k) and b.shape == (out,),
                   "%s: encoder.convs.%d has shape %s, layer %d needs (%d, %d, %d, %d)" % (path, conv, w.shape, i,
                                                                                         out, channels, k, k))
            T["encoder.conv%d.weight" % conv], T["encoder.conv%d.bias" % conv] = w, b
            channels, conv = out, conv + 1
        flat += list(layer)
    expect(not S.prefixed("encoder.convs.%d." % conv), "%s: more encoder convs than layers" % path)
    return {"encoder.input_size": size, "encoder.layers": flat}, T, channels


def convert(sd, path, op=None, question_length=None, question_padding="unmasked", box_padding="zero_rows",
            encoder=None):
    """Infer the configuration from the tensors and build the .ban metadata and tensors."""
    S = StateDict(sd, path)
    meta, T = {}, {}
    if encoder is not None or S.prefixed("encoder."):
        enc_meta, enc_T, enc_channels = convert_encoder(S, encoder, path)
        meta.update(enc_meta)
        T.update(enc_T)

    emb = S.get("w_emb.emb.weight", 2)
    vocab_size, emb_dim = emb.shape[0] - 1, emb.shape[1]
    expect(vocab_size >= 1, "%s: the word embedding has %d rows" % (path, emb.shape[0]))
    T["word_embedding.weight"] = emb
    tables = 1
    if S.has("w_emb.emb_.weight"):
        emb2 = S.get("w_emb.emb_.weight", 2)
        expect(emb2.shape == emb.shape, "%s: w_emb.emb_.weight has shape %s, w_emb.emb.weight %s"
               % (path, emb2.shape, emb.shape))
        T["word_embedding_extra.weight"] = emb2
        tables = 2

    extra = [k for k in S.prefixed("q_emb.rnn.") if re.search(r"_l[1-9]|_reverse", k)]
    expect(not extra, "%s: the question GRU has several layers or directions (%s); ban.h runs one "
           "unidirectional layer" % (path, extra[:2]))
    if S.has("q_emb.rnn.weight_ih_l0") is False:
        raise ExportError("%s: no question GRU (q_emb.rnn.weight_ih_l0); is this a BAN checkpoint?" % path)
    w_ih = S.get("q_emb.rnn.weight_ih_l0", 2)
    w_hh = S.get("q_emb.rnn.weight_hh_l0", 2)
    hidden = w_hh.shape[1]
    expect(w_hh.shape == (3 * hidden, hidden), "%s: GRU weight_hh_l0 has shape %s; an LSTM is not supported"
           % (path, w_hh.shape))
    expect(w_ih.shape == (3 * hidden, emb_dim * tables),
           "%s: GRU weight_ih_l0 has shape %s, expected (%d, %d) from the embedding" % (path, w_ih.shape,
                                                                                       3 * hidden, emb_dim * tables))
    zeros3 = np.zeros(3 * hidden, np.float32)
    T["gru.weight_ih"] = w_ih
    T["gru.weight_hh"] = w_hh
    T["gru.bias_ih"] = S.get("q_emb.rnn.bias_ih_l0", 1) if S.has("q_emb.rnn.bias_ih_l0") else zeros3
    T["gru.bias_hh"] = S.get("q_emb.rnn.bias_hh_l0", 1) if S.has("q_emb.rnn.bias_hh_l0") else zeros3
    for n in ("gru.bias_ih", "gru.bias_hh"):
        expect(T[n].shape == (3 * hidden,), "%s: %s has shape %s" % (path, n, T[n].shape))

    att_v, att_vb = S.linear("v_att.logits.v_net")
    att_q, att_qb = S.linear("v_att.logits.q_net")
    width = att_v.shape[0]
    expect(width % hidden == 0 and width >= hidden,
           "%s: attention projection width %d is not a multiple of the hidden size %d" % (path, width, hidden))
    rank = width // hidden
    in_dim = att_v.shape[1]
    expect(att_q.shape == (width, hidden), "%s: attention q_net has shape %s, expected (%d, %d)"
           % (path, att_q.shape, width, hidden))
    expect(not S.has("v_att.logits.h_net.weight") and not S.has("v_att.logits.h_net.weight_v"),
           "%s: attention through h_net (more than 32 glimpses) is not supported" % path)
    h_mat = S.weight("v_att.logits.h_mat")
    expect(h_mat.ndim == 4 and h_mat.shape[0] == 1 and h_mat.shape[2] == 1 and h_mat.shape[3] == width,
           "%s: v_att.logits.h_mat has shape %s, expected (1, G, 1, %d)" % (path, h_mat.shape, width))
    glimpses = h_mat.shape[1]
    h_bias = S.get("v_att.logits.h_bias")
    expect(h_bias.size == glimpses, "%s: v_att.logits.h_bias has shape %s for %d glimpses" % (path, h_bias.shape,
                                                                                              glimpses))
    op = op if op is not None else ("c" if tables == 2 else "")
    expect(set(op) <= set("cs"), "--op: unknown letters in %r (the reference knows 'c' and 's')" % op)
    expect(("c" in op) == (tables == 2), "--op %r disagrees with the checkpoint, which has %d embedding table%s"
           % (op, tables, "s" if tables > 1 else ""))
    spatial_concat = 1 if "s" in op else 0
    feature_dim = in_dim - 6 * spatial_concat
    expect(feature_dim >= 1, "%s: attention input size %d is too small for op 's'" % (path, in_dim))

    task = "vqa" if S.has("classifier.main.0.weight") or S.has("classifier.main.0.weight_v") else "grounding"
    visual_w, visual_b = [att_v], [att_vb]
    if task == "vqa":
        expect(not spatial_concat, "--op 's' exists only in the reference's grounding model")
        qn_w, qn_b, qp_w, qp_b, cp_w, cp_b = [], [], [], [], [], []
        counter = S.has("counter.f.0.weight")
        for g in range(glimpses):
            vw, vb = S.linear("b_net.%d.v_net" % g)
            expect(vw.shape == (hidden, in_dim), "%s: b_net.%d.v_net has shape %s, expected (%d, %d) (the glimpse "
                   "networks of ban.h use k=1)" % (path, g, vw.shape, hidden, in_dim))
            visual_w.append(vw)
            visual_b.append(vb)
            w, b = S.linear("b_net.%d.q_net" % g)
            expect(w.shape == (hidden, hidden), "%s: b_net.%d.q_net has shape %s" % (path, g, w.shape))
            qn_w.append(w), qn_b.append(b)
            w, b = S.linear("q_prj.%d" % g)
            expect(w.shape == (hidden, hidden), "%s: q_prj.%d has shape %s" % (path, g, w.shape))
            qp_w.append(w), qp_b.append(b)
            if counter:
                w, b = S.linear("c_prj.%d" % g)
                expect(w.shape[0] == hidden and w.shape[1] >= 2, "%s: c_prj.%d has shape %s" % (path, g, w.shape))
                cp_w.append(w), cp_b.append(b)
        expect(not S.prefixed("b_net.%d." % glimpses), "%s: more glimpse networks than the attention's %d glimpses"
               % (path, glimpses))
        T["glimpse.q_net.weight"], T["glimpse.q_net.bias"] = np.stack(qn_w), np.stack(qn_b)
        T["glimpse.q_prj.weight"], T["glimpse.q_prj.bias"] = np.stack(qp_w), np.stack(qp_b)
        objects = 0
        if counter:
            expect(len({w.shape for w in cp_w}) == 1, "%s: c_prj layers differ in shape" % path)
            objects = cp_w[0].shape[1] - 1
            T["glimpse.c_prj.weight"], T["glimpse.c_prj.bias"] = np.stack(cp_w), np.stack(cp_b)
            fs = []
            while S.has("counter.f.%d.weight" % len(fs)):
                fs.append(S.get("counter.f.%d.weight" % len(fs), 1))
            expect(len(fs) >= 8 and len({f.shape for f in fs}) == 1 and fs[0].shape[0] >= 2,
                   "%s: the counter needs at least 8 piecewise-linear functions of one size (found %s)"
                   % (path, [f.shape for f in fs]))
            T["counter.functions"] = np.stack(fs)
        else:
            expect(not S.prefixed("c_prj."), "%s: c_prj layers without counter functions" % path)
        c1, c1b = S.linear("classifier.main.0")
        c2, c2b = S.linear("classifier.main.3")
        expect(c1.shape[1] == hidden and c2.shape[1] == c1.shape[0],
               "%s: classifier shapes %s and %s do not chain from %d" % (path, c1.shape, c2.shape, hidden))
        T["classifier.0.weight"], T["classifier.0.bias"] = c1, c1b
        T["classifier.1.weight"], T["classifier.1.bias"] = c2, c2b
        meta_task = {"ban.answer_count": c2.shape[0], "ban.classifier_hidden": c1.shape[0],
                     "ban.counter_objects": objects}
    else:
        meta_task = {}
    T["visual.weight"] = np.concatenate(visual_w, 0)
    T["visual.bias"] = np.concatenate(visual_b, 0)
    T["attention.q_net.weight"], T["attention.q_net.bias"] = att_q, att_qb
    T["attention.h_mat"] = h_mat.reshape(glimpses, width)
    T["attention.h_bias"] = h_bias.reshape(glimpses)

    if "encoder.layers" in meta:
        expect(enc_channels == feature_dim, "%s: the encoder makes %d channels, the attention reads %d"
               % (path, enc_channels, feature_dim))
        expect(box_padding == "counts", "%s: an encoder's grid cells are all real boxes: --box-padding counts" % path)
    unused = sorted(set(S.sd) - S.used)
    expect(not unused, "%s: tensors ban.h does not know what to do with: %s" % (path, ", ".join(unused[:6])))
    if question_length is None:
        question_length = 14 if task == "vqa" else 82
    meta.update({
        "ban.task": task,
        "ban.vocab_size": vocab_size,
        "ban.embedding_dim": emb_dim,
        "ban.embedding_tables": tables,
        "ban.feature_dim": feature_dim,
        "ban.spatial_concat": spatial_concat,
        "ban.hidden_dim": hidden,
        "ban.attention_rank": rank,
        "ban.glimpses": glimpses,
        "ban.question_length": question_length,
        "ban.question_padding": question_padding,
        "ban.box_padding": box_padding,
    })
    meta.update(meta_task)
    return meta, T


def vocabulary(path, vocab_size):
    """The words of a reference dictionary.pkl ([word2idx, idx2word]) in id order."""
    obj = load_pickle(path)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], dict)):
        raise ExportError("%s: expected a pickle of [word2idx, idx2word]" % path)
    word2idx, idx2word = obj
    words = [None] * len(word2idx)
    for w, i in word2idx.items():
        if not isinstance(w, str) or not isinstance(i, int) or not 0 <= i < len(words) or words[i] is not None:
            raise ExportError("%s: word2idx is not a numbering 0..%d of words (entry %s: %s)" % (
                path, len(words) - 1, describe(w), describe(i)))
        if not w or "\0" in w:
            raise ExportError("%s: word %d is empty or holds a NUL byte" % (path, i))
        words[i] = w
    if len(words) != vocab_size:
        raise ExportError("%s: %d words, but the checkpoint's embedding has %d rows (a vocabulary of %d plus "
                          "padding)" % (path, len(words), vocab_size + 1, vocab_size))
    if isinstance(idx2word, list) and idx2word != words:
        print("warning: %s: idx2word disagrees with word2idx; using word2idx (what the reference tokenizer uses)"
              % path, file=sys.stderr)
    return words


def answers(path, count):
    """Answer strings by index: OpenVQA's answer_dict.json ([ans_to_ix, ix_to_ans]) or the
    reference's trainval_label2ans.pkl (a pickled list)."""
    f, _ = open_regular(path)  # not open(): a FIFO would block it
    with f:
        head = f.read(1)
    if head == b"[":
        return openvqa.answer_dict(path, count)
    obj = load_pickle(path)
    if not (isinstance(obj, list) and all(isinstance(a, str) and "\0" not in a for a in obj)):
        raise ExportError("%s: expected a pickle of a list of answer strings" % path)
    if len(obj) != count:
        raise ExportError("%s: %d answers, but the classifier has %d outputs" % (path, len(obj), count))
    return obj


def convert_openvqa(sd, checkpoint, vocab_questions=None, answer_file=None, dicts=None, pad_boxes=None,
                    dictionary=None, question_length=None):
    """OpenVQA's BAN: (metadata, tensors), its vocabulary rebuilt from the VQA question files or
    read from GQA's dicts.json."""
    meta, tensors, gqa = openvqa.convert(StateDict(sd, checkpoint), pad_boxes)
    V, A = meta["ban.vocab_size"], meta["ban.answer_count"]
    if dictionary:
        raise ExportError("--dictionary is the reference's vocabulary; an OpenVQA model takes --vocab-questions "
                          "(VQA) or --dicts (GQA)")
    if gqa:
        if not dicts:
            raise ExportError("%s: an OpenVQA GQA model needs its dicts.json (--dicts): its vocabulary, answers and "
                              "question length" % checkpoint)
        if vocab_questions or answer_file:
            raise ExportError("a GQA model's vocabulary and answers come from --dicts, not --vocab-questions or "
                              "--answers")
        words, labels, max_token = openvqa.gqa_dicts(dicts, V, A)
    else:
        if dicts:
            raise ExportError("--dicts is GQA's; this is a VQA model (--vocab-questions and --answers)")
        if pad_boxes is not None:
            print("note: --pad-boxes ignored: this VQA model masks padded boxes (all-zero rows), so their count "
                  "changes nothing", file=sys.stderr)
        words = openvqa.vqa_vocabulary(vocab_questions, V) if vocab_questions else None
        labels = answers(answer_file, A) if answer_file else None
        max_token = 14
    meta["ban.question_length"] = question_length or max_token
    if words is not None:
        meta["tokenizer.words"] = words
    if labels is not None:
        meta["answers.labels"] = labels
    return meta, tensors


def export(checkpoint, output, dictionary=None, answer_file=None, op=None, question_length=None,
           question_padding=None, box_padding=None, fp16=False, layout="panels", vocab_questions=None,
           dicts=None, pad_boxes=None, dtype=None):
    """Options left None come from the checkpoint's 'conventions' entry (this project's
    training script writes one), else the framework's conventions. Returns the metadata and
    the tensors in rows (the file holds the layout and dtype asked for; fp16: dtype f16)."""
    state, entries = load_state_dict(checkpoint)  # an optimizer's state is checked, not copied out
    sd = find_state_dict(state, checkpoint)
    other = openvqa.other_model(sd)
    if other:
        raise ExportError("%s: a checkpoint of OpenVQA's %s model; ban.h runs BAN (OpenVQA's 'ban' models only)"
                          % (checkpoint, other))
    if openvqa.is_openvqa(sd):
        if op or question_padding or box_padding:
            raise ExportError("--op, --question-padding and --box-padding describe the reference's models; an "
                              "OpenVQA model's conventions are its own")
        meta, tensors = convert_openvqa(sd, checkpoint, vocab_questions, answer_file, dicts, pad_boxes, dictionary,
                                        question_length)
        return write(entries, checkpoint, output, meta, tensors, dtype or ("f16" if fp16 else "f32"), layout)
    if vocab_questions or dicts:
        raise ExportError("--vocab-questions and --dicts are for OpenVQA's models; this is a reference checkpoint "
                          "(--dictionary)")
    if pad_boxes is not None:
        print("note: --pad-boxes ignored: the reference's models mask padded boxes", file=sys.stderr)
    conv = entries.get("conventions", {})
    if not isinstance(conv, dict):
        raise ExportError("%s: 'conventions' must be a dict" % checkpoint)
    question_padding = question_padding or conv.get("question_padding", "unmasked")
    box_padding = box_padding or conv.get("box_padding", "zero_rows")
    question_length = question_length or conv.get("question_length")
    if question_padding not in ("unmasked", "masked") or box_padding not in ("zero_rows", "counts") or not (
            question_length is None or (isinstance(question_length, int) and 1 <= question_length <= 4096)):
        raise ExportError("%s: unknown conventions (question_padding %s, box_padding %s, question_length %s)"
                          % (checkpoint, describe(question_padding), describe(box_padding), describe(question_length)))
    encoder = entries.get("encoder")
    meta, tensors = convert(sd, checkpoint, op, question_length, question_padding, box_padding, encoder)
    if dictionary:
        meta["tokenizer.words"] = vocabulary(dictionary, meta["ban.vocab_size"])
        meta["tokenizer.unknown_id"] = meta["ban.vocab_size"] - 1  # the reference maps unknown words to ntoken-1
    if answer_file:
        if meta["ban.task"] != "vqa":
            raise ExportError("--answers given for a grounding model")
        meta["answers.labels"] = answers(answer_file, meta["ban.answer_count"])
    return write(entries, checkpoint, output, meta, tensors, dtype or ("f16" if fp16 else "f32"), layout)


def write(entries, checkpoint, output, meta, tensors, dtype, layout):
    """The .ban file: provenance added (entries: the checkpoint's top-level entries beside its
    state dict), weights in the layout and dtype asked for."""
    meta["source.checkpoint"] = os.path.basename(checkpoint)
    epoch = entries.get("epoch")
    if type(epoch) is int:
        expect(-2 ** 63 <= epoch < 2 ** 63, "%s: 'epoch' is %s, not a 64-bit integer" % (checkpoint, describe(epoch)))
        meta["source.epoch"] = epoch
    meta["source.exporter"] = EXPORTER
    try:
        stored = banfile.stored_tensors(tensors, layout, dtype)
    except ValueError as e:
        raise ExportError(str(e)) from None
    try:
        data = banfile.encode_ban(meta, stored)
    except (ValueError, TypeError) as e:  # a value from the checkpoint the format cannot hold
        raise ExportError("%s: cannot be written as a .ban file: %s" % (checkpoint, e)) from None
    banfile.write_atomic(output, data)
    return meta, tensors


class Interrupted(BaseException):
    """SIGTERM, raised where the export is, so that its temporary file is removed on the way out."""


def on_sigterm(signum, frame):
    raise Interrupted()


def error(message, status=2):
    """The one line a failed export prints (the message may quote a hostile file: no line breaks)."""
    print("ban_export: error: %s" % str(message).replace("\r", "\\r").replace("\n", "\\n"), file=sys.stderr)
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("checkpoint", help="a .pth checkpoint (zip or legacy layout)")
    ap.add_argument("--dictionary", help="the reference's dictionary.pkl (vocabulary, for tokenising text)")
    ap.add_argument("--answers", help="the answer strings of a VQA model: the reference's trainval_label2ans.pkl or "
                    "OpenVQA's answer_dict.json")
    ap.add_argument("--vocab-questions", nargs="+", metavar="QUESTIONS.json",
                    help="OpenVQA, VQA-v2: the question files its vocabulary was built from, in its order (train, "
                    "val, test, vg: v2_OpenEnded_mscoco_{train2014,val2014,test2015}_questions.json, "
                    "VG_questions.json)")
    ap.add_argument("--dicts", help="OpenVQA, GQA: its dicts.json (answers, vocabulary, question length)")
    ap.add_argument("--pad-boxes", type=int,
                    help="OpenVQA, GQA: the box count the model's features were padded to (OpenVQA: 100, the "
                    "default); its padding is not masked, so the count matters. Ignored, with a note, for models "
                    "that mask padding")
    ap.add_argument("--output", "-o", required=True, help="the .ban file to write")
    ap.add_argument("--op", help="the reference's --op string; 'c' is inferred from the tensors, "
                    "'s' (spatial features appended to box features, grounding) must be given")
    ap.add_argument("--question-length", type=int,
                    help="positions questions were padded to in training (reference: 14 for VQA, 82 for Flickr30k)")
    ap.add_argument("--question-padding", choices=["unmasked", "masked"],
                    help="how the model was trained: 'unmasked' (the reference: padding runs through the GRU and "
                    "is attended) or 'masked' (default: the checkpoint's conventions, else unmasked)")
    ap.add_argument("--box-padding", choices=["zero_rows", "counts"],
                    help="how padded boxes were marked in training: all-zero feature rows (the reference) or "
                    "explicit counts (default: the checkpoint's conventions, else zero_rows)")
    ap.add_argument("--fp16", action="store_true", help="store weights as float16 (half the file; --dtype f16)")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16", "int8"],
                    help="f32 (default); f16: every tensor, widened at load; bf16 or int8 (a scale per row): the "
                         "Linear weights and word embeddings, read as stored by ban.h's bf16 and int8 kernels")
    ap.add_argument("--layout", choices=["panels", "rows"], default="panels",
                    help="the big Linear weights in panels of 32 rows, read by ban.h's own product (default), or "
                         "in PyTorch's rows, for CBLAS")
    args = ap.parse_args(argv)
    if args.fp16 and args.dtype not in (None, "f16"):
        ap.error("--fp16 is --dtype f16")
    if args.question_length is not None and not 1 <= args.question_length <= 4096:
        ap.error("--question-length must be between 1 and 4096")
    try:
        meta, tensors = export(args.checkpoint, args.output, args.dictionary, args.answers, args.op,
                               args.question_length, args.question_padding, args.box_padding, args.fp16,
                               args.layout, args.vocab_questions, args.dicts, args.pad_boxes, dtype=args.dtype)
    except (ExportError, CheckpointError, openvqa.Error, OSError) as e:
        return error(e)
    except MemoryError:
        return error("out of memory")
    except (KeyboardInterrupt, Interrupted):
        return error("interrupted; %s was left as it was" % args.output, 130)
    except Exception as e:  # a bug: still one line, never a traceback
        return error("internal error (%s: %s)" % (type(e).__name__, e))
    params = sum(int(np.prod(t.shape)) for t in tensors.values())
    print("%s: %s model, %d glimpses, hidden %d, features %d, %d words%s, %d parameters" % (
        args.output, meta["ban.task"], meta["ban.glimpses"], meta["ban.hidden_dim"], meta["ban.feature_dim"],
        meta["ban.vocab_size"], ", %d answers" % meta["ban.answer_count"] if meta["ban.task"] == "vqa" else "",
        params))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_sigterm)
    sys.exit(main())
