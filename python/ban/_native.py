"""libban.so through ctypes: where the library is, and ban.h's structures and functions.

Every structure below mirrors its declaration at the top of ban.h field by field
(tests/test_python_abi.py compares the two). Pointer fields are declared c_void_p so
that a NumPy array's address goes in as an int, without building a ctypes pointer
object per call. ctypes.CDLL releases the GIL for the duration of every call.
"""
import ctypes
import ctypes.util
import os

SONAME = "libban.so.0"
# ban_status
OK, ERR_IO, ERR_FORMAT, ERR_UNSUPPORTED, ERR_NOMEM, ERR_ARG, ERR_INPUT = range(7)
TASK_VQA, TASK_GROUNDING = 0, 1
# ban.h's limits, as its #defines say
MAX_BATCH, MAX_BOXES, MAX_TOKENS, MAX_ENTITIES, MAX_THREADS = 4096, 1024, 1024, 256, 256
MASKED_GROUNDING = -99.0  # BAN__MASKED_GROUNDING: the logit of a padded box or entity slot


class Config(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "task", "vocab_size", "embedding_dim", "embedding_tables", "feature_dim", "spatial_concat", "hidden_dim",
        "attention_rank", "num_glimpses", "num_answers", "classifier_hidden", "counter_objects", "question_length",
        "question_masking", "zero_row_padding", "padding_id", "unknown_id", "has_vocabulary", "has_answers",
        "image_height", "image_width", "grid_height", "grid_width", "encoder_layers", "linear_weights",
        "panel_weights", "glimpse_rank", "pad_boxes", "adapter_dim", "adapter_box_dim", "tokenizer", "num_ids")]


class Limits(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("max_batch", "max_boxes", "max_tokens", "max_entities", "threads")]


class Input(ctypes.Structure):
    _fields_ = [("batch", ctypes.c_int), ("boxes", ctypes.c_int), ("images", ctypes.c_int),
                ("image_index", ctypes.c_void_p), ("features", ctypes.c_void_p), ("spatials", ctypes.c_void_p),
                ("box_counts", ctypes.c_void_p), ("pixels", ctypes.c_void_p), ("tokens_len", ctypes.c_int),
                ("tokens", ctypes.c_void_p), ("token_counts", ctypes.c_void_p), ("entities_len", ctypes.c_int),
                ("entities", ctypes.c_void_p), ("entity_counts", ctypes.c_void_p), ("glimpses", ctypes.c_int)]


class TokenInfo(ctypes.Structure):  # the binding reads an (n, 3) int32 array of these
    _fields_ = [("start", ctypes.c_int), ("end", ctypes.c_int), ("known", ctypes.c_int)]


class Output(ctypes.Structure):
    _fields_ = [("logits", ctypes.c_void_p), ("attention", ctypes.c_void_p), ("entropy", ctypes.c_void_p)]


def library_path():
    """The libban.so this package loads: $BAN_LIBRARY when set; in an installed prefix
    (PREFIX/lib/python3/dist-packages/ban), PREFIX/lib/libban.so.0; in the source tree
    (python/ban), build/libban.so; otherwise the bare soname, for the dynamic loader."""
    env = os.environ.get("BAN_LIBRARY")
    if env:
        return env
    package = os.path.dirname(os.path.abspath(__file__))
    site = os.path.dirname(package)
    if os.path.basename(site) == "dist-packages" and os.path.basename(os.path.dirname(site)) == "python3":
        candidate = os.path.join(os.path.dirname(os.path.dirname(site)), SONAME)
    else:
        candidate = os.path.join(os.path.dirname(os.path.dirname(package)), "build", "libban.so")
    return candidate if os.path.exists(candidate) else SONAME


def _load():
    path = library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("ban: cannot load the library %s (%s); build it with make, install it with make install, "
                          "or set BAN_LIBRARY=path/to/libban.so" % (path, e)) from None
    P, I, S, V = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, None
    PP = ctypes.POINTER(ctypes.c_void_p)
    for name, res, args in [
            ("ban_model_load", I, [S, PP]), ("ban_model_free", V, [P]), ("ban_model_error", P, [P]),
            ("ban_model_config", ctypes.POINTER(Config), [P]), ("ban_model_parameter_count", ctypes.c_size_t, [P]),
            ("ban_model_answer", P, [P, I]), ("ban_model_word", P, [P, I]),
            ("ban_ctx_create", I, [P, ctypes.POINTER(Limits), PP]), ("ban_ctx_free", V, [P]),
            ("ban_ctx_error", P, [P]), ("ban_ctx_limits", ctypes.POINTER(Limits), [P]),
            ("ban_tokenize_info", I, [P, S, P, P, I, ctypes.POINTER(I)]), ("ban_question_positions", I, [P, I]),
            ("ban_forward", I, [P, ctypes.POINTER(Input), ctypes.POINTER(Output)]),
            ("ban_encode", I, [P, P, I, P, P]), ("ban_argmax", I, [P, I]), ("ban_status_string", P, [I])]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib, path


lib, loaded_path = _load()

# expf of the C library: ban vqa's probabilities are 1.0f / (1.0f + expf(-logit)) in float, and
# NumPy's own float32 exp need not round every value as the C library does
_libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
expf = _libm.expf
expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]


def text(ptr):
    """A NUL-terminated UTF-8 string of the library (an address) as str (bytes that are not UTF-8
    kept as surrogates: str.encode('utf-8', 'surrogateescape') gives them back), None for NULL."""
    return None if not ptr else ctypes.string_at(ptr).decode("utf-8", "surrogateescape")
