"""OpenVQA's BAN (MILVLG/openvqa, openvqa/models/ban): its checkpoints, vocabularies and
answers, for tools/ban_export.py. Standard library and numpy only.

How OpenVQA's BAN differs from the reference (jnhwkim/ban-vqa), and so what the .ban file
records (docs/FORMAT.md):
  * parameters `embedding`, `rnn`, `adapter.*`, `backbone.BiAtt.logits.*`, `backbone.b_net.<g>`,
    `backbone.q_prj.<g>`, `classifer.0/3` (sic); every Linear of the backbone and classifier
    weight-normed with dim=None, inside an MLP whose `mlp.0` is dropout;
  * glimpse networks of rank K_TIMES: `b_net[g]` projects to K_TIMES * HIDDEN_SIZE and sum-pools
    windows of K_TIMES (`ban.glimpse_rank`); `q_prj` has no ReLU (as the reference's); no counter;
  * questions: lower-cased, `.,'!?"()*#:;` deleted, `-` and `/` to spaces, split; ids PAD 0,
    UNK 1, CLS 2, then words; padded with PAD to 14 (VQA) or `max_token` (GQA);
  * GQA: `adapter.bbox_linear` on 5 box values, `adapter.frcn_linear` on the feature and that
    embedding, before the attention looks for zero rows: padded boxes are not masked, so the
    count they are padded to (`ban.pad_boxes`, OpenVQA's 100) changes the outputs.
"""
import json
import re

import numpy as np

from torchfile import CheckpointError, open_regular

PUNCTUATION = re.compile(r"([.,'!?\"()*#:;])")
SPECIALS = ("PAD", "UNK", "CLS")  # ids 0, 1, 2 of every OpenVQA vocabulary
# other OpenVQA models, known by a parameter name only they have, refused by name
OTHER_MODELS = (("linear_rel.", "MMNasNet"), ("attflat_img.", "MCAN"), ("backbone.enc_list.", "MCAN"),
                ("backbone.v_att.", "BUTD"), ("backbone.i_att.", "MFB/MFH"), ("backbone.q_att.", "MFB/MFH"))


class Error(Exception):
    """An OpenVQA file that cannot be exported."""


def tokenize(question):
    """OpenVQA's words of a question (vqa_loader.proc_ques / tokenize)."""
    return PUNCTUATION.sub("", question.lower()).replace("-", " ").replace("/", " ").split()


def is_openvqa(sd):
    """A state dict (keys without 'module.') of OpenVQA's BAN?"""
    return any(k.startswith("backbone.BiAtt.") for k in sd)


def other_model(sd):
    """The name of another OpenVQA model whose state dict this is, or None."""
    if any(k.startswith("backbone.BiAtt.") for k in sd):
        return None
    for prefix, name in OTHER_MODELS:
        if any(k.startswith(prefix) for k in sd):
            return name
    return None


def _mlp(S, prefix):
    """The one weight-normed Linear of an OpenVQA MLP (prefix.mlp.<i>, mlp.0 being dropout)."""
    return S.linear(prefix, "mlp")


def _plain(S, prefix):
    """A plain nn.Linear (the GQA adapter's, the classifier's): (W, b)."""
    return S.linear(prefix)


def expect(cond, msg):
    if not cond:
        raise Error(msg)


def convert(S, pad_boxes=None):
    """(metadata, tensors) of OpenVQA's BAN from its state dict S (ban_export.StateDict): the
    whole configuration from the shapes. pad_boxes: the box count of a GQA model (100)."""
    path = S.path
    emb = S.get("embedding.weight", 2)
    V, Ew = emb.shape
    expect(V >= 3, "%s: the word embedding has %d rows; OpenVQA's start with PAD, UNK, CLS" % (path, V))
    extra = [k for k in S.prefixed("rnn.") if re.search(r"_l[1-9]|_reverse", k)]
    expect(not extra, "%s: the question GRU has several layers or directions (%s)" % (path, extra[:2]))
    w_ih, w_hh = S.get("rnn.weight_ih_l0", 2), S.get("rnn.weight_hh_l0", 2)
    D = w_hh.shape[1]
    expect(w_hh.shape == (3 * D, D) and w_ih.shape == (3 * D, Ew),
           "%s: GRU weights %s and %s do not fit a GRU over %d-d embeddings" % (path, w_ih.shape, w_hh.shape, Ew))
    T = {"word_embedding.weight": emb, "gru.weight_ih": w_ih, "gru.weight_hh": w_hh}
    z = np.zeros(3 * D, np.float32)
    T["gru.bias_ih"] = S.get("rnn.bias_ih_l0", 1) if S.has("rnn.bias_ih_l0") else z
    T["gru.bias_hh"] = S.get("rnn.bias_hh_l0", 1) if S.has("rnn.bias_hh_l0") else z

    att_v, att_vb = _mlp(S, "backbone.BiAtt.logits.v_net")
    att_q, att_qb = _mlp(S, "backbone.BiAtt.logits.q_net")
    width, img_dim = att_v.shape
    expect(width % D == 0, "%s: BA_HIDDEN_SIZE %d is not a multiple of HIDDEN_SIZE %d" % (path, width, D))
    k = width // D
    expect(att_q.shape == (width, D), "%s: BiAtt q_net has shape %s, expected (%d, %d)" % (path, att_q.shape,
                                                                                          width, D))
    h_mat = S.weight("backbone.BiAtt.logits.h_mat")
    expect(h_mat.ndim == 4 and h_mat.shape[0] == 1 and h_mat.shape[2] == 1 and h_mat.shape[3] == width,
           "%s: BiAtt h_mat has shape %s, expected (1, GLIMPSE, 1, %d)" % (path, h_mat.shape, width))
    G = h_mat.shape[1]
    h_bias = S.get("backbone.BiAtt.logits.h_bias")
    expect(h_bias.size == G, "%s: BiAtt h_bias has shape %s for %d glimpses" % (path, h_bias.shape, G))

    visual_w, visual_b, qn_w, qn_b, qp_w, qp_b = [att_v], [att_vb], [], [], [], []
    for g in range(G):
        vw, vb = _mlp(S, "backbone.b_net.%d.v_net" % g)
        qw, qb = _mlp(S, "backbone.b_net.%d.q_net" % g)
        pw, pb = _mlp(S, "backbone.q_prj.%d" % g)
        expect(vw.shape == (width, img_dim) and qw.shape == (width, D) and pw.shape == (D, D),
               "%s: glimpse %d has v_net %s, q_net %s, q_prj %s; expected (%d, %d), (%d, %d), (%d, %d)"
               % (path, g, vw.shape, qw.shape, pw.shape, width, img_dim, width, D, D, D))
        visual_w.append(vw), visual_b.append(vb), qn_w.append(qw), qn_b.append(qb), qp_w.append(pw), qp_b.append(pb)
    expect(not S.prefixed("backbone.b_net.%d." % G) and not S.prefixed("backbone.q_prj.%d." % G),
           "%s: more glimpse networks than the attention's %d glimpses" % (path, G))
    c1, c1b = _plain(S, "classifer.0")
    c2, c2b = _plain(S, "classifer.3")
    expect(c1.shape[1] == D and c2.shape[1] == c1.shape[0],
           "%s: classifier shapes %s and %s do not chain from %d" % (path, c1.shape, c2.shape, D))
    T.update({
        "visual.weight": np.concatenate(visual_w, 0), "visual.bias": np.concatenate(visual_b, 0),
        "attention.q_net.weight": att_q, "attention.q_net.bias": att_qb,
        "attention.h_mat": h_mat.reshape(G, width), "attention.h_bias": h_bias.reshape(G),
        "glimpse.q_net.weight": np.stack(qn_w), "glimpse.q_net.bias": np.stack(qn_b),
        "glimpse.q_prj.weight": np.stack(qp_w), "glimpse.q_prj.bias": np.stack(qp_b),
        "classifier.0.weight": c1, "classifier.0.bias": c1b, "classifier.1.weight": c2, "classifier.1.bias": c2b,
    })
    meta = {
        "ban.task": "vqa", "ban.vocab_size": V, "ban.embedding_dim": Ew, "ban.embedding_tables": 1,
        "ban.spatial_concat": 0, "ban.hidden_dim": D, "ban.attention_rank": k, "ban.glimpse_rank": k,
        "ban.glimpses": G, "ban.question_padding": "unmasked", "ban.answer_count": c2.shape[0],
        "ban.classifier_hidden": c1.shape[0], "ban.counter_objects": 0,
        "tokenizer.rules": "openvqa", "tokenizer.padding_id": 0, "tokenizer.unknown_id": 1,
        "source.framework": "openvqa",
    }
    gqa = S.has("adapter.frcn_linear.weight")
    if gqa:
        fw, fb = _plain(S, "adapter.frcn_linear")
        Eb = 0
        if S.has("adapter.bbox_linear.weight"):  # USE_BBOX_FEAT, as the released models
            bw, bb = _plain(S, "adapter.bbox_linear")
            expect(bw.shape[1] == 5, "%s: adapter.bbox_linear reads %d box values; the released GQA models read 5 "
                   "(x1/w, y1/h, x2/w, y2/h, area)" % (path, bw.shape[1]))
            Eb = bw.shape[0]
            T.update({"adapter.bbox_linear.weight": bw, "adapter.bbox_linear.bias": bb})
        expect(fw.shape[0] == img_dim and fw.shape[1] > Eb,
               "%s: adapter.frcn_linear has shape %s; the attention reads %d-d boxes after a %d-d box embedding"
               % (path, fw.shape, img_dim, Eb))
        T.update({"adapter.frcn_linear.weight": fw, "adapter.frcn_linear.bias": fb})
        for n in S.prefixed("adapter.grid_linear."):  # built with USE_AUX_FEAT; BAN's forward never reads it
            S.used.add(n)
        pad = 100 if pad_boxes is None else pad_boxes
        expect(1 <= pad <= 1024, "--pad-boxes %d outside 1..1024" % pad)
        meta.update({"ban.feature_dim": fw.shape[1] - Eb, "ban.adapter": "box_embedding", "ban.adapter_dim": img_dim,
                     "ban.adapter_box_dim": Eb, "ban.box_padding": "fixed", "ban.pad_boxes": pad})
    else:
        meta.update({"ban.feature_dim": img_dim, "ban.box_padding": "zero_rows"})
    unused = sorted(set(S.sd) - S.used)
    expect(not unused, "%s: tensors ban.h does not know what to do with: %s" % (path, ", ".join(unused[:6])))
    return meta, T, gqa


def _load_json(path, what):
    """A JSON file, read only if it is a regular file (a FIFO would block, /dev/zero never end)."""
    try:
        f, size = open_regular(path)
        with f:
            data = f.read(size)
        return json.loads(data.decode("utf-8"))
    except CheckpointError as e:
        raise Error("cannot read %s: %s" % (what, e))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as e:
        raise Error("%s: cannot read %s: %s" % (path, what, e))


def _check_word(w, path, what):
    if not isinstance(w, str) or not w or "\0" in w:
        raise Error("%s: %s %r is not a word" % (path, what, w))
    try:
        w.encode("utf-8")
    except UnicodeEncodeError:
        raise Error("%s: %s %r is not valid text (a lone surrogate)" % (path, what, w))


def vqa_vocabulary(question_files, rows):
    """OpenVQA's VQA vocabulary, rebuilt as vqa_loader.tokenize builds it: PAD, UNK, CLS, then
    every word of the questions of the files in order (train, val, test, vg), first occurrence
    first. Its size must equal the embedding's rows."""
    token_to_ix = dict((w, i) for i, w in enumerate(SPECIALS))
    for path in question_files:
        obj = _load_json(path, "a questions file")
        qs = obj.get("questions") if isinstance(obj, dict) else None
        if not isinstance(qs, list):
            raise Error("%s: not a VQA questions file (no 'questions' list)" % path)
        for i, q in enumerate(qs):
            text = q.get("question") if isinstance(q, dict) else None
            if not isinstance(text, str):
                raise Error("%s: question %d has no 'question' string" % (path, i))
            for w in tokenize(text):
                if w not in token_to_ix:
                    _check_word(w, path, "a word of question %d," % i)
                    token_to_ix[w] = len(token_to_ix)
    if len(token_to_ix) != rows:
        raise Error("the question files give a vocabulary of %d words (PAD, UNK, CLS and %d more), but the "
                    "checkpoint's embedding has %d rows: give the four files OpenVQA built it from, in order "
                    "(train, val, test, vg)" % (len(token_to_ix), len(token_to_ix) - 3, rows))
    return list(token_to_ix)


def _answer_list(ans_to_ix, ix_to_ans, path):
    if not isinstance(ans_to_ix, dict) or not isinstance(ix_to_ans, dict):
        raise Error("%s: expected [ans_to_ix, ix_to_ans, ...] (two dicts)" % path)
    answers = [None] * len(ix_to_ans)
    for k, a in ix_to_ans.items():
        if not (isinstance(k, str) and k.isdigit() and int(k) < len(answers) and answers[int(k)] is None):
            raise Error("%s: ix_to_ans is not a numbering 0..%d (key %r)" % (path, len(answers) - 1, k))
        _check_word(a, path, "answer")
        answers[int(k)] = a
    if len(ans_to_ix) != len(answers) or any(ans_to_ix.get(a) != i for i, a in enumerate(answers)):
        raise Error("%s: ans_to_ix and ix_to_ans disagree" % path)
    return answers


def answer_dict(path, count):
    """OpenVQA's answer_dict.json ([ans_to_ix, ix_to_ans]) as answers by index."""
    obj = _load_json(path, "an answer dictionary")
    if not (isinstance(obj, list) and len(obj) == 2):
        raise Error("%s: expected OpenVQA's answer_dict.json, [ans_to_ix, ix_to_ans]" % path)
    answers = _answer_list(obj[0], obj[1], path)
    if len(answers) != count:
        raise Error("%s: %d answers, but the classifier has %d outputs" % (path, len(answers), count))
    return answers


def gqa_dicts(path, rows, count):
    """OpenVQA's GQA dicts.json, [ans_to_ix, ix_to_ans, token_to_ix, max_token]: (words by id,
    answers by index, max_token)."""
    obj = _load_json(path, "GQA dicts")
    if not (isinstance(obj, list) and len(obj) == 4):
        raise Error("%s: expected OpenVQA's GQA dicts.json, [ans_to_ix, ix_to_ans, token_to_ix, max_token]" % path)
    answers = _answer_list(obj[0], obj[1], path)
    token_to_ix, max_token = obj[2], obj[3]
    if not isinstance(token_to_ix, dict):
        raise Error("%s: token_to_ix is not a dict" % path)
    words = [None] * len(token_to_ix)
    for w, i in token_to_ix.items():
        if not (isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(words) and words[i] is None):
            raise Error("%s: token_to_ix is not a numbering 0..%d (entry %r: %r)" % (path, len(words) - 1, w, i))
        _check_word(w, path, "word")
        words[i] = w
    if words[:2] != ["PAD", "UNK"]:
        raise Error("%s: token_to_ix starts %r; OpenVQA's start PAD 0, UNK 1" % (path, words[:2]))
    if len(words) != rows:
        raise Error("%s: %d words, but the checkpoint's embedding has %d rows" % (path, len(words), rows))
    if len(answers) != count:
        raise Error("%s: %d answers, but the classifier has %d outputs" % (path, len(answers), count))
    if not (isinstance(max_token, int) and not isinstance(max_token, bool) and 1 <= max_token <= 1024):
        raise Error("%s: max_token %r is not a question length in 1..1024" % (path, max_token))
    return words, answers, max_token
