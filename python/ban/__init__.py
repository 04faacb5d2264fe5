"""ban: Bilinear Attention Networks (Kim, Jun, Zhang, NeurIPS 2018) in-process, through ban.h.

    import ban
    m = ban.Model("model.ban")                     # mapped once, shared by every thread
    r = m.vqa(features, spatials, questions=["What color is the bus?"])
    r.answers, r.logits, r.top_k, r.entropy        # r.attention with attention=True

Pure Python over ctypes (the standard library and NumPy): the library is libban.so, found
beside this package (the source tree after `make`: build/libban.so; an installed prefix:
PREFIX/lib/libban.so.0), or wherever $BAN_LIBRARY says.

Arrays: anything np.asarray reads (NumPy arrays, lists, CPU PyTorch tensors). A
C-contiguous, aligned float32 array (int32 for ids and counts, uint8 for pixels) is
handed to the library as it is, without a copy; anything else is converted once per call.
A wrong shape or type raises ValueError naming the argument, the shape expected and the
shape given; whatever the library refuses (a NaN feature, a token outside the vocabulary,
a count out of range, a malformed model file) raises ban.Error with the library's message.

Threads: the GIL is released during every call into the library, and each Python thread
gets its own ban.h context the first time it calls a model, sized to that call and grown
when a later call is larger (never made per call), so threads sharing one Model run in
parallel: a ThreadPoolExecutor over one Model scales with the cores. Model(path, threads=N)
gives every context N threads of its own for the matrix products; with one Python thread
per core, use threads=1.
"""
import os
import re
import threading

import numpy as np

from . import _native as _n
from ._native import MASKED_GROUNDING, TASK_GROUNDING, TASK_VQA

__version__ = "0.2.0"  # ban.h's BAN_VERSION (tests/test_python.py checks)
__all__ = ["Model", "VQAResult", "GroundResult", "Error", "parse_markup", "library", "TASK_VQA", "TASK_GROUNDING",
           "MASKED_GROUNDING"]


def library():
    """The path of the libban.so this process loaded."""
    return _n.loaded_path


class Error(Exception):
    """A refusal by ban.h or by the model: `message` is the library's own text (naming the
    file, offset, tensor, example or token concerned), `status` its ban_status code
    (ban.h: BAN_ERR_IO 1, _FORMAT 2, _UNSUPPORTED 3, _NOMEM 4, _ARG 5, _INPUT 6)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def status_name(self):
        """ban_status_string(status): "bad input", "malformed model file", ..."""
        return _n.text(_n.lib.ban_status_string(self.status))


# ---- arguments: any array-like in, the library's types out, or a ValueError naming it ------------

def _asarray(x, name):
    try:
        return np.asarray(x)
    except ValueError as e:  # ragged lists
        raise ValueError("%s: not an array: %s" % (name, e)) from None


def _shape_text(shape):
    return "(%s)" % ", ".join(str(d) for d in shape) if len(shape) != 1 else "(%s,)" % shape[0]


def _check_shape(a, name, shape):
    """shape: ints (fixed) and letters (any size >= 1)."""
    ok = a.ndim == len(shape) and all(d >= 1 if isinstance(s, str) else d == s for d, s in zip(a.shape, shape))
    if not ok:
        free = [s for s in shape if isinstance(s, str)]
        raise ValueError("%s: expected shape %s%s, got %s" % (
            name, _shape_text(shape), " with %s >= 1" % ", ".join(free) if free else "", _shape_text(a.shape)))


def _floats(x, name, shape):
    """float32, C-contiguous and aligned: x itself when it is so already."""
    a = _asarray(x, name)
    if a.dtype.kind not in "fiu":
        raise ValueError("%s: expected real numbers (float32), got dtype %s" % (name, a.dtype))
    _check_shape(a, name, shape)
    return _native_layout(a, np.float32)


def _ints(x, name, shape, lo=-2 ** 31, hi=2 ** 31 - 1, dtype=np.int32):
    """Whole numbers within [lo, hi] as dtype (int32: ban.h's int and int32_t)."""
    a = _asarray(x, name)
    if a.dtype.kind not in "iu":
        raise ValueError("%s: expected integers, got dtype %s" % (name, a.dtype))
    _check_shape(a, name, shape)
    if not np.can_cast(a.dtype, dtype) and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError("%s: values must lie in %d..%d, got %d..%d" % (name, lo, hi, a.min(), a.max()))
    return _native_layout(a, dtype)


def _native_layout(a, dtype):
    """a itself when it is C-contiguous, aligned and of dtype in native byte order, else a copy that is."""
    if a.dtype == dtype and a.flags.c_contiguous and a.flags.aligned:
        return a
    return np.require(a, dtype, ["C_CONTIGUOUS", "ALIGNED"])


def _addr(a):
    return None if a is None else a.__array_interface__["data"][0]


def _count(x, name, lo, hi):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or not lo <= x <= hi:
        raise ValueError("%s: expected a whole number in %d..%d, got %r" % (name, lo, hi, x))
    return int(x)


def _sigmoid(x):
    """1.0f / (1.0f + expf(-x)) in float32 with the C library's expf, as ban vqa computes its
    probabilities (so that a results file written from Python is the same to the byte)."""
    flat = np.asarray(x, np.float32).ravel()
    e = np.array([_n.expf(-float(v)) for v in flat], np.float32)
    return (np.float32(1) / (np.float32(1) + e)).reshape(np.shape(x))


# ---- Flickr30k Entities markup, read as the reference reads it --------------------------------

_PHRASE = re.compile(r"\[(.*?)\]")
_MARKUP_OPEN = re.compile(r"\[[^ ]+ ")
_CHAIN = re.compile(r"\/EN\#(\d+)")


def parse_markup(line):
    """One line of a Flickr30k Entities Sentences file, read as the reference reads it
    (jnhwkim/ban-vqa: dataset.py _load_flickr30k, utils.py remove_annotations and find_sublist).

    Returns (sentence, entities): sentence is the stripped line without its markup (what the
    tokenizer reads), entities a list of dicts {"chain", "types", "phrase", "position"} in the
    line's order, where position is the index of the LAST word of the FIRST occurrence of the
    phrase's words in the sentence split on single spaces (a standalone "," counts there
    although the tokenizer deletes it: the reference trains and tests that way). Raises
    ValueError where the reference's assertions fail (no space in a phrase's markup, no
    chain id, a phrase not found).

    >>> parse_markup("[/EN#1/people A man] in [/EN#2/clothing a red shirt] .")[1][1]["position"]
    6
    """
    sent = line.strip()
    sentence = _MARKUP_OPEN.sub("", sent).replace("]", "")
    words = sentence.split(" ")
    entities = []
    for entity in _PHRASE.findall(sent):
        if " " not in entity:
            raise ValueError("markup '[%s]' has no space between the chain and the phrase" % entity)
        info, phrase = entity.split(" ", 1)
        chain = _CHAIN.findall(info)
        if not chain:
            raise ValueError("markup '[%s]' has no chain id ('/EN#<digits>')" % entity)
        sub, position = phrase.split(" "), -1
        for i in range(len(words) - len(sub) + 1):
            if words[i:i + len(sub)] == sub:
                position = i + len(sub) - 1
                break
        if position < 0:
            raise ValueError("phrase '%s' is not in the sentence '%s' (the reference asserts)" % (phrase, sentence))
        entities.append({"chain": int(chain[0]), "types": info.split("/")[2:], "phrase": phrase,
                         "position": position})
    return sentence, entities


# ---- the model, its contexts, and the results ------------------------------------------------

class _Handle:
    """Owns one ban_model; every context holds it, so the model is freed after its last context."""

    def __init__(self, ptr):
        self.ptr = ptr

    def __del__(self):
        if self.ptr and _n is not None and _n.lib is not None:
            _n.lib.ban_model_free(self.ptr)
            self.ptr = None


class _Context:
    """One ban_ctx of one thread (ban.h: a context per thread): buffers for up to `limits`
    (batch, boxes, tokens, entities), allocated once, and the token scratch of tokenize (ids and
    ban_token_info)."""

    def __init__(self, handle, limits, threads):
        self.ptr = None
        ptr = _n.ctypes.c_void_p()
        status = _n.lib.ban_ctx_create(handle.ptr, _n.Limits(*limits, threads), _n.ctypes.byref(ptr))
        if status != _n.OK:  # the context still holds the message
            message = _n.text(_n.lib.ban_ctx_error(ptr)) if ptr else "out of memory"
            _n.lib.ban_ctx_free(ptr)
            raise Error(status, message)
        self.handle, self.ptr, self.pid = handle, ptr, os.getpid()
        got = _n.lib.ban_ctx_limits(ptr).contents
        self.limits = (got.max_batch, got.max_boxes, got.max_tokens, got.max_entities)
        self.ids, self.info = np.empty(64, np.int32), np.empty((64, 3), np.int32)  # ban_token_info: 3 ints

    def error(self, status):
        return Error(status, _n.text(_n.lib.ban_ctx_error(self.ptr)))

    def __del__(self):
        # a context inherited through fork() is left alone: its threads did not come along
        if self.ptr and self.pid == os.getpid() and _n is not None and _n.lib is not None:
            _n.lib.ban_ctx_free(self.ptr)
        self.ptr = None


class VQAResult:
    """The outputs of Model.vqa for B questions.

    logits       (B, A) float32, one row per question
    answer_ids   (B,) int, the argmax of each row (ban_argmax: the first maximum)
    answers      [B] str, those answers' strings (None when the model file carries none)
    top_k_ids    (B, k) int, the k answers of largest logit, decreasing, ties to the lower index
    top_k_probabilities (B, k) float32, sigmoid(logit) of those, computed as ban vqa does (the
                 model is trained with binary cross-entropy: each is its own estimate, and they
                 need not sum to 1)
    top_k        [B] lists of k (answer string, probability) pairs, as ban vqa --top-k writes them
    entropy      (B, G) float32, the entropy (nats) of each glimpse's attention map
    attention    (B, G, K, P) float32 attention maps (0 on padding), or None when not asked for
    The strings and probabilities are made when first read.
    """

    def __init__(self, logits, answer_ids, top_k_ids, entropy, attention, names):
        self.logits, self.answer_ids, self.top_k_ids = logits, answer_ids, top_k_ids
        self.entropy, self.attention, self._names, self._prob = entropy, attention, names, None

    @property
    def answers(self):
        return None if self._names is None else [self._names[i] for i in self.answer_ids]

    @property
    def top_k_probabilities(self):
        if self._prob is None:
            self._prob = _sigmoid(np.take_along_axis(self.logits, self.top_k_ids, 1))
        return self._prob

    @property
    def top_k(self):
        names = self._names or {}
        return [[(names[i] if names else None, float(p)) for i, p in zip(ti, tp)]
                for ti, tp in zip(self.top_k_ids, self.top_k_probabilities)] if self.top_k_ids.shape[1] else None

    def __repr__(self):
        return "<ban.VQAResult of %d questions: answers %r>" % (len(self.logits), self.answers)


class GroundResult:
    """The outputs of Model.ground for B sentences with E entity slots.

    logits    (B, G, K, E) float32 attention logits of every box for every entity slot;
              padded boxes and padded entity slots hold ban.MASKED_GROUNDING (-99)
    scores    (B, K, E) float32, the logits summed over glimpses (a box's score, as ban ground)
    top_k     (B, E, k) int, the k boxes of highest score for each entity slot, decreasing,
              ties to the lower index (padded boxes score -99 and come last)
    tokens    (B, L) int32, the token ids the model read
    entities  with sentences=: [B] lists of the dicts of parse_markup (chain, types, phrase,
              position) for the entities run, in slot order; None with entities=
    """

    __slots__ = ("logits", "scores", "top_k", "tokens", "entities")

    def __init__(self, **fields):
        for k, v in fields.items():
            setattr(self, k, v)

    def __repr__(self):
        return "<ban.GroundResult of %d sentences, %d entity slots>" % (self.logits.shape[0], self.logits.shape[3])


class Model:
    """A .ban model file, mapped once (ban_model_load) and shared by every thread.

    Model(path, threads=0): threads is each context's thread count for ban.h's own matrix
    product (ban_limits.threads; 0: the processors online). With several Python threads
    calling one Model, give threads=1. A model file in use must be replaced by renaming a new
    one over it, never rewritten in place (it is mapped).

    Attributes: path, threads, config (a dict of ban_config: task, vocab_size, feature_dim,
    hidden_dim, num_glimpses, num_answers, question_length, question_masking, padding_id, ...),
    parameters (the parameter count), answers (tuple of the answer strings, or None), words
    (tuple of the vocabulary, or None). Methods: tokenize, vqa, ground, encode, close. Usable as
    a context manager (close at the end).
    """

    def __init__(self, path, threads=0):
        self.path = os.fspath(path)
        self.threads = _count(threads, "threads", 0, _n.MAX_THREADS)
        raw = os.fsencode(self.path)
        if b"\0" in raw:
            raise ValueError("path: holds a NUL character")
        ptr = _n.ctypes.c_void_p()
        status = _n.lib.ban_model_load(raw, _n.ctypes.byref(ptr))
        if status != _n.OK:  # the model still holds the message
            message = _n.text(_n.lib.ban_model_error(ptr)) if ptr else "out of memory"
            _n.lib.ban_model_free(ptr)
            raise Error(status, message)
        self._handle = _Handle(ptr)
        c = _n.lib.ban_model_config(ptr).contents
        self._cfg = {name: getattr(c, name) for name, _ in _n.Config._fields_}
        self.parameters = int(_n.lib.ban_model_parameter_count(ptr))
        self._local = threading.local()
        self._answers = self._words = None

    def __repr__(self):
        c = self._cfg
        return "<ban.Model %s: %s, hidden %d, %d glimpses%s>" % (
            self.path, "VQA" if c["task"] == TASK_VQA else "grounding", c["hidden_dim"], c["num_glimpses"],
            ", %d answers" % c["num_answers"] if c["task"] == TASK_VQA else "")

    def __reduce__(self):
        raise TypeError("a ban.Model cannot be pickled: open the file where it is used (each Dask worker opens "
                        "its own: examples/dask_vqa.py)")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release this object's hold on the model: the mapping goes once no context of any
        thread uses it. Calls after close raise ValueError."""
        self._handle = None
        self._local = threading.local()

    @property
    def config(self):
        """ban_config as a dict (a copy): task (ban.TASK_VQA or TASK_GROUNDING), vocab_size,
        embedding_dim, embedding_tables, feature_dim (Dv), spatial_concat, hidden_dim,
        attention_rank, num_glimpses (G), num_answers (A), classifier_hidden, counter_objects,
        question_length, question_masking, zero_row_padding, padding_id, unknown_id,
        has_vocabulary, has_answers, image_height, image_width, grid_height, grid_width,
        encoder_layers, linear_weights, panel_weights, glimpse_rank, pad_boxes, adapter_dim,
        adapter_box_dim, tokenizer, num_ids (ban.h's comments say what each holds)."""
        return dict(self._cfg)

    def _live(self):
        if self._handle is None:
            raise ValueError("%s: the model is closed" % self.path)
        return self._handle

    def _strings(self, getter, n):
        h = self._live()
        return tuple(_n.text(getter(h.ptr, i)) for i in range(n))

    @property
    def answers(self):
        """The answer strings (A of them, by class index), or None if the file carries none."""
        if self._answers is None and self._cfg["has_answers"]:
            self._answers = self._strings(_n.lib.ban_model_answer, self._cfg["num_answers"])
        return self._answers

    @property
    def words(self):
        """The vocabulary (word of each id 0..V-1), or None if the file carries none."""
        if self._words is None and self._cfg["has_vocabulary"]:
            self._words = self._strings(_n.lib.ban_model_word, self._cfg["vocab_size"])
        return self._words

    # -- contexts: one per thread, grown when a call needs more, never made per call --

    def _context(self, batch=1, boxes=1, tokens=1, entities=1):
        handle = self._live()
        grid = self._cfg["grid_height"] * self._cfg["grid_width"]
        need = (batch, max(boxes, grid), tokens, entities)
        ctx = getattr(self._local, "ctx", None)
        if ctx is not None and ctx.pid != os.getpid():
            ctx = None  # inherited through fork(): its threads are gone
        if ctx is not None and all(n <= have for n, have in zip(need, ctx.limits)):
            return ctx
        if ctx is not None:
            need = tuple(max(n, have) for n, have in zip(need, ctx.limits))
        self._local.ctx = ctx = _Context(handle, need, self.threads)
        self._local.made = getattr(self._local, "made", 0) + 1
        return ctx

    def _require(self, task, method):
        if self._cfg["task"] != task:
            raise Error(_n.ERR_ARG, "%s is a %s model: use Model.%s" % (
                self.path, "grounding" if self._cfg["task"] == TASK_GROUNDING else "VQA",
                "ground" if method == "vqa" else "vqa"))

    # -- tokens --

    def _tokenize(self, ctx, question):
        """(ids, info) of one question by ban_tokenize_info, as int32 arrays (info: start, end,
        known of each token): the one place a question becomes tokens, for tokenize() and for
        questions= / sentences= alike, and so the one policy of the project's front ends: a
        question with no word the vocabulary knows (an empty one too) is refused."""
        if isinstance(question, str):
            data = question.encode("utf-8", "surrogatepass")  # lone surrogates: refused by the library
        elif isinstance(question, (bytes, bytearray)):
            data = bytes(question)
        else:
            raise TypeError("a question must be str or bytes, got %s" % type(question).__name__)
        if b"\0" in data:
            raise ValueError("question %r holds a NUL character (byte %d)" % (question, data.index(b"\0")))
        n = _n.ctypes.c_int()
        while True:
            status = _n.lib.ban_tokenize_info(ctx.ptr, data, ctx.ids.ctypes.data, ctx.info.ctypes.data, len(ctx.ids),
                                              _n.ctypes.byref(n))
            if status != _n.OK:
                raise ctx.error(status)
            if n.value <= len(ctx.ids):
                return ctx.ids[:n.value].copy(), ctx.info[:n.value].copy()
            ctx.ids, ctx.info = np.empty(2 * n.value, np.int32), np.empty((2 * n.value, 3), np.int32)

    def tokenize(self, question, info=False):
        """The token ids of a question (str or UTF-8 bytes) as the reference's tokenizer gives
        them: Python's str.lower(), ',' and '?' deleted, "'s" split off, str.split(), words
        outside the vocabulary -> config["unknown_id"]. All of them (the models truncate to
        config["question_length"] themselves), unpadded, as a list of int; with info=True, a
        list of (id, text, known) instead: the text each token was read from, and whether the
        vocabulary knows it (False: answered as the unknown id).

        As every front end of ban.h (ban_tokenize_info), raises ban.Error for a question
        without a word the vocabulary knows (an empty one too), text that is not UTF-8, or a
        model file without a vocabulary; vqa(questions=...) and ground(sentences=...) read
        their text through here."""
        ids, where = self._tokenize(self._context(), question)
        if not info:
            return ids.tolist()
        data = question.encode("utf-8", "surrogatepass") if isinstance(question, str) else bytes(question)
        return [(int(i), data[a:b].decode("utf-8"), bool(k)) for i, (a, b, k) in zip(ids, where)]

    def _question_tokens(self, questions):
        """questions -> tokens (B, L) padded with padding_id, and their counts (B), kept to the
        positions the model runs (as ban vqa keeps them)."""
        if isinstance(questions, (str, bytes)):
            questions = [questions]
        questions = list(questions)
        if not questions:
            raise ValueError("questions: expected at least one question, got none")
        c = self._cfg
        keep = _n.MAX_TOKENS if c["question_masking"] else c["question_length"]
        ctx = self._context()
        ids = [self._tokenize(ctx, q)[0][:keep] for q in questions]
        return self._pad(ids, max([1] + [len(t) for t in ids]))

    def _pad(self, ids, L):
        tokens = np.full((len(ids), L), self._cfg["padding_id"], np.int32)
        for b, t in enumerate(ids):
            tokens[b, :len(t)] = t[:L]
        return tokens, np.array([min(len(t), L) for t in ids], np.int32)

    def _tokens(self, questions, tokens, token_counts):
        if (questions is None) == (tokens is None):
            raise ValueError("give the questions either as strings (questions=) or as token ids (tokens=)")
        if questions is not None:
            if token_counts is not None:
                raise ValueError("token_counts: only with tokens= (questions= counts them itself)")
            return self._question_tokens(questions)
        tok = _ints(tokens, "tokens", ("B", "L"))
        counts = None if token_counts is None else _ints(token_counts, "token_counts", (tok.shape[0],))
        return tok, counts

    # -- images --

    def _images(self, features, spatials, box_counts, pixels):
        """(features, spatials, box_counts, pixels, N, K) as the library reads them."""
        c = self._cfg
        if c["encoder_layers"]:
            if features is not None or spatials is not None or box_counts is not None:
                raise ValueError("features: this model reads images: give pixels= (N, %d, %d, 3) uint8 only" % (
                    c["image_height"], c["image_width"]))
            px = self._pixels(pixels)
            return None, None, None, px, px.shape[0], c["grid_height"] * c["grid_width"]
        if pixels is not None:
            raise ValueError("pixels: this model reads box features, not images: give features=")
        if features is None:
            raise ValueError("features: expected shape (N, K, %d), got None" % c["feature_dim"])
        f = _floats(features, "features", ("N", "K", c["feature_dim"]))
        N, K = f.shape[:2]
        # (ban_forward's own rule, which refuses the call too)
        needs = ["op 's'"] * c["spatial_concat"] + ["the GQA adapter's box embedding"] * bool(c["adapter_box_dim"]) + \
            ["its counting module"] * bool(c["task"] == TASK_VQA and c["counter_objects"])
        if spatials is None and needs:
            raise ValueError("spatials: this model needs them (%s): expected shape %s, got None" % (
                needs[0], _shape_text((N, K, 6))))
        s = None if spatials is None else _floats(spatials, "spatials", (N, K, 6))
        n = None if box_counts is None else _ints(box_counts, "box_counts", (N,))
        return f, s, n, None, N, K

    def _pixels(self, pixels):
        c = self._cfg
        if pixels is None:
            raise ValueError("pixels: expected shape (N, %d, %d, 3), got None" % (c["image_height"], c["image_width"]))
        return _ints(pixels, "pixels", ("N", c["image_height"], c["image_width"], 3), 0, 255, np.uint8)

    @staticmethod
    def _select_images(image_index, B, N, *arrays):
        """(images, image_index, arrays) for ban_input: images 0 and no index when question b reads
        image b. ban_input holds at most B images: with more, those asked about are gathered (a
        copy of them) and the index follows."""
        if image_index is None:
            if N == B:
                return 0, None, arrays
            if N == 1:
                return 1, np.zeros(B, np.int32), arrays  # one image, every question about it
            raise ValueError("image_index: %d images for %d questions: give image_index (%d,), the image of each "
                             "question" % (N, B, B))
        index = _ints(image_index, "image_index", (B,))
        if N <= B:
            return N, index, arrays
        bad = np.nonzero((index < 0) | (index >= N))[0]
        if len(bad):
            raise ValueError("image_index: question %d reads image %d, outside 0..%d" % (bad[0], index[bad[0]], N - 1))
        used, inverse = np.unique(index, return_inverse=True)
        return len(used), inverse.astype(np.int32), tuple(None if a is None else np.ascontiguousarray(a[used])
                                                          for a in arrays)

    def _forward(self, ctx, B, K, images, image_index, f, s, n, px, tok, counts, glimpses=0, entities=None,
                 entity_counts=None, logits=None, attention=None, entropy=None):
        E = 0 if entities is None else entities.shape[1]
        inp = _n.Input(B, 0 if px is not None else K, images, _addr(image_index), _addr(f), _addr(s), _addr(n),
                       _addr(px), tok.shape[1], _addr(tok), _addr(counts), E, _addr(entities), _addr(entity_counts),
                       glimpses)
        out = _n.Output(_addr(logits), _addr(attention), _addr(entropy))
        status = _n.lib.ban_forward(ctx.ptr, _n.ctypes.byref(inp), _n.ctypes.byref(out))
        if status != _n.OK:
            raise ctx.error(status)

    def vqa(self, features=None, spatials=None, questions=None, tokens=None, box_counts=None, image_index=None,
            glimpses=None, attention=False, top_k=1, pixels=None, token_counts=None):
        """Answer B questions about N images in one forward pass (ban_forward).

        features     (N, K, Dv) box features (Dv = config["feature_dim"]); rows of zeros are
                     padded boxes for a reference model, unless box_counts says otherwise
        spatials     (N, K, 6) x1, y1, x2, y2, w, h normalised to the image; needed by the
                     counting module (None for a model without one)
        questions    a question (str) or a list of B of them, tokenised with the model's own
                     vocabulary (tokenize), or instead:
        tokens       (B, L) token ids in 0..config["num_ids"]-1 (config["padding_id"] pads), with
        token_counts (B,) real tokens first (optional: by default up to the first padding id)
        box_counts   (N,) real boxes first in each image (optional)
        image_index  (B,) the image of each question, 0..N-1; by default question b reads image
                     b, and when N = 1 every question reads the one image (with N > B, the
                     images asked about are gathered: a copy)
        glimpses     run only the first G' glimpses (the paper's Fig. 2c); None: all
        attention    True: also return the attention maps (B, G, K, P)
        top_k        how many answers to rank per question (r.top_k, r.top_k_ids; 0: none)
        pixels       (N, H, W, 3) uint8 RGB instead of features/spatials/box_counts, for a model
                     with an image encoder (config["encoder_layers"] > 0)

        Returns a VQAResult: logits (B, A), answer_ids, answers, top_k, top_k_ids,
        top_k_probabilities, entropy (B, G), attention (B, G, K, P) or None. Arrays may be
        anything np.asarray reads; C-contiguous float32 features are read in place (no copy).
        Raises ValueError for a wrong shape or type (naming the argument), ban.Error for what
        the library refuses (NaN or infinite features, a token outside the vocabulary, a count
        or index out of range, a grounding model).

        >>> r = m.vqa(v, b, questions=["what color is the bus?"], top_k=3)
        >>> r.answers[0], r.top_k[0]
        """
        self._require(TASK_VQA, "vqa")
        c = self._cfg
        tok, counts = self._tokens(questions, tokens, token_counts)
        f, s, n, px, N, K = self._images(features, spatials, box_counts, pixels)
        B, L = tok.shape
        images, index, (f, s, n, px) = self._select_images(image_index, B, N, f, s, n, px)
        g = 0 if glimpses is None else _count(glimpses, "glimpses", 0, c["num_glimpses"])
        A, G = c["num_answers"], c["num_glimpses"]
        k = _count(top_k, "top_k", 0, A)
        ctx = self._context(batch=B, boxes=K, tokens=L)
        P = _n.lib.ban_question_positions(ctx.handle.ptr, L)
        logits = np.empty((B, A), np.float32)
        entropy = np.empty((B, G), np.float32)
        att = np.empty((B, G, K, P), np.float32) if attention else None
        self._forward(ctx, B, K, images, index, f, s, n, px, tok, counts, g, logits=logits, attention=att,
                      entropy=entropy)
        ids = logits.argmax(1)  # the first maximum, as ban_argmax, which skips NaN: rows with one go to it
        for b in np.nonzero(np.isnan(logits).any(1))[0]:
            ids[b] = _n.lib.ban_argmax(_addr(logits[b]), A)
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k] if k > 1 else ids[:, None][:, :k]
        return VQAResult(logits, ids, top, entropy, att, self.answers)

    def ground(self, features, spatials=None, tokens=None, entities=None, sentences=None, box_counts=None,
               image_index=None, token_counts=None, entity_counts=None, top_k=1):
        """Ground the entities of B sentences in N images (ban_forward of a grounding model).

        features      (N, K, Dv) box features; spatials (N, K, 6) (needed by op 's' models)
        sentences     a Flickr30k Entities markup line or a list of B of them, e.g.
                      "[/EN#1/people A man] in [/EN#2/clothing a red shirt] .": the markup is read
                      as the reference reads it (parse_markup), every entity of a chain other
                      than 0 (notvisual) is run, the sentence's words tokenised and padded to
                      config["question_length"], as ban ground --sentence does; or instead:
        tokens        (B, L) token ids (V pads), token_counts (B,) optional, and
        entities      (B, E) token positions of the entities (the last word of each phrase),
                      entity_counts (B,) optional: by default the reference's rule, a slot after
                      the first holding position 0 is padding
        box_counts    (N,) real boxes first (optional); image_index (B,) as in vqa
        top_k         boxes to rank per entity (r.top_k)

        Returns a GroundResult: logits (B, G, K, E), scores (B, K, E), top_k (B, E, k), tokens,
        entities (with sentences=). Raises ValueError for wrong shapes or markup the reference
        cannot read, ban.Error for what the library refuses (a position past the sentence's
        tokens, a VQA model).
        """
        self._require(TASK_GROUNDING, "ground")
        c = self._cfg
        if (sentences is None) == (tokens is None) or (tokens is None) != (entities is None):
            raise ValueError("give either sentences= (markup) or both tokens= and entities=")
        found = None
        if sentences is not None:
            if entity_counts is not None or token_counts is not None:
                raise ValueError("entity_counts, token_counts: only with tokens= and entities=")
            tok, ent, found = self._sentence_inputs(sentences)
            counts = ent_counts = None
        else:
            tok = _ints(tokens, "tokens", ("B", "L"))
            B = tok.shape[0]
            counts = None if token_counts is None else _ints(token_counts, "token_counts", (B,))
            ent = _ints(entities, "entities", (B, "E"))
            ent_counts = None if entity_counts is None else _ints(entity_counts, "entity_counts", (B,))
        f, s, n, _, N, K = self._images(features, spatials, box_counts, None)
        B, L = tok.shape
        E = ent.shape[1]
        images, index, (f, s, n) = self._select_images(image_index, B, N, f, s, n)
        k = _count(top_k, "top_k", 0, K)
        ctx = self._context(batch=B, boxes=K, tokens=L, entities=E)
        logits = np.empty((B, c["num_glimpses"], K, E), np.float32)
        self._forward(ctx, B, K, images, index, f, s, n, None, tok, counts, entities=ent, entity_counts=ent_counts,
                      logits=logits)
        scores = logits.sum(axis=1, dtype=np.float32)
        top = np.argsort(-scores.transpose(0, 2, 1), axis=2, kind="stable")[:, :, :k]
        return GroundResult(logits=logits, scores=scores, top_k=top, tokens=tok, entities=found)

    def _sentence_inputs(self, sentences):
        """Markup lines -> tokens (B, question_length), entity positions (B, E) padded with 0
        (the reference's padding), and each line's entities."""
        if isinstance(sentences, (str, bytes)):
            sentences = [sentences]
        sentences = list(sentences)
        if not sentences:
            raise ValueError("sentences: expected at least one sentence, got none")
        L = self._cfg["question_length"]
        ctx = self._context()
        ids, found = [], []
        for i, line in enumerate(sentences):
            if isinstance(line, bytes):
                line = line.decode("utf-8")
            try:
                sentence, ents = parse_markup(line)
            except ValueError as e:
                raise ValueError("sentences[%d]: %s" % (i, e)) from None
            ents = [e for e in ents if e["chain"] != 0]  # chain 0 is notvisual: never grounded
            if not ents:
                raise ValueError("sentences[%d]: no entity to ground (chain 0 is notvisual): %r" % (i, line))
            for e in ents:
                if e["position"] >= L:
                    raise ValueError("sentences[%d]: entity '%s' is at position %d, past the %d positions the "
                                     "model reads (the reference asserts here)" % (i, e["phrase"], e["position"], L))
            ids.append(self._tokenize(ctx, sentence)[0])
            found.append(ents)
        tokens, _ = self._pad(ids, L)
        ent = np.zeros((len(found), max(len(e) for e in found)), np.int32)
        for b, ents in enumerate(found):
            ent[b, :len(ents)] = [e["position"] for e in ents]
        return tokens, ent, found

    def encode(self, pixels):
        """The image encoder's grid for N images (ban_encode), for a model with one.

        pixels  (N, H, W, 3) uint8 RGB, H, W = config["image_height"], config["image_width"]

        Returns (features (N, K, C), spatials (N, K, 6)), K = grid_height * grid_width cells:
        what vqa(pixels=...) runs the rest of the model on. Raises ban.Error for a model
        without an encoder."""
        c = self._cfg
        if not c["encoder_layers"]:
            raise Error(_n.ERR_UNSUPPORTED, "%s has no image encoder: it reads box features" % self.path)
        px = self._pixels(pixels)
        N, K = px.shape[0], c["grid_height"] * c["grid_width"]
        ctx = self._context(batch=N, boxes=K)
        features = np.empty((N, K, c["feature_dim"]), np.float32)
        spatials = np.empty((N, K, 6), np.float32)
        status = _n.lib.ban_encode(ctx.ptr, px.ctypes.data, N, features.ctypes.data, spatials.ctypes.data)
        if status != _n.OK:
            raise ctx.error(status)
        return features, spatials
