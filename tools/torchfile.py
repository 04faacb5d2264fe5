"""Read PyTorch checkpoint files without PyTorch, and without running their code.

    obj = load_checkpoint(path)                 # every tensor as a numpy array
    state_dict, entries = load_state_dict(path) # only the model's tensors copied out
    obj = load_pickle(path)                     # a plain pickle: dictionary.pkl, trainval_label2ans.pkl

Both layouts written by torch.save are read (facts in FORMATS.md §8):
  * zip (PyTorch >= 1.6): <name>/data.pkl plus one raw storage per <name>/data/<key>;
  * legacy (before 1.6): five pickles in a row (magic number, protocol version, system
    info, the object, the storage keys), then each storage as an 8-byte element count
    and its raw little-endian data.

Every file may be hostile, so the pickles are not given to Python's unpickler but run by
this module's own interpreter of the pickle opcodes (protocols 0 to 5), which
  * resolves only a fixed table of names (OrderedDict, the tensor rebuild functions, the
    storage types; for a plain pickle OrderedDict alone), made afresh for every load, so
    that nothing one file does can reach the next: os.system, builtins.eval, numpy,
    torch.load... are refused before anything is called, and so are the opcodes that
    instantiate classes (INST, OBJ, NEWOBJ), set attributes on anything but a state dict
    (BUILD), use the extension registry or out-of-band buffers;
  * charges everything the load builds against one budget, BUDGET_FACTOR times the
    file's size plus BUDGET_FLOOR: the file's bytes, each object, the memo, every
    storage it inflates and every tensor it copies out. A few bytes cannot ask for
    gigabytes (a torch-written checkpoint needs about two to three times its size);
  * nests containers at most MAX_DEPTH deep, never changes a container after putting
    it in another (so there are no cycles) and takes only strings and small integers as
    dictionary keys, so that nothing recursive - hashing, comparing, printing - can
    exhaust the C stack, and no keys can be made to collide in bulk;
  * checks that every element a tensor reaches lies inside its storage, and reads a zip
    entry only when a tensor needs it, only as far as its storage, which must be
    exactly the size the pickle declares (a deflate bomb is refused unread).
Tensors are copied out last, and only those asked for: load_state_dict reads an
optimizer's state (OpenVQA's checkpoints carry Adamax's) and checks it like the rest, but
copies none of it. Every failure is a CheckpointError with a one-line message naming the
file and, inside a pickle, the offset.
"""
import codecs
import collections
import os
import pickle
import re
import stat
import struct
import sys
import zipfile
import zlib

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # converted to float32 when copied out
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}
STATE_DICT_KEYS = ("model_state", "state_dict", "model")  # the reference's, OpenVQA's, others'

BUDGET_FACTOR = 8          # the loader may allocate this many times the file's size...
BUDGET_FLOOR = 32 << 20    # ...plus this much
MAX_DEPTH = 64             # containers inside containers (a checkpoint needs about 6)
MAX_DIMS = 32              # numpy's limit
MAX_ELEMENTS = 1 << 60     # a storage's or a dimension's element count
MAX_KEY = 1 << 60          # integer dictionary keys lie strictly between -MAX_KEY and MAX_KEY

# what the budget charges for the parts of objects sys.getsizeof does not see (measured on
# CPython 3.11, rounded up to cover a table caught in the middle of growing)
SLOT = 8                   # a stack entry, for each opcode
LIST_ITEM = 16
DICT_ITEM, ORDERED_DICT_ITEM, SET_ITEM = 112, 160, 112
MEMO_ITEM = 112
TRACKED = 112              # the depth table's entry for a container
MARK_COST = 64
ZIP_ENTRY = 640            # a ZipInfo and its place in zipfile's tables


class CheckpointError(Exception):
    """A checkpoint that cannot or must not be read."""


def describe(value, depth=1):
    """A short one-line description of an untrusted value, for an error message: never a
    4,000-digit integer (which Python will not even print), a megabyte of text or a line break."""
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if -10 ** 18 < value < 10 ** 18 else "a %d-bit integer" % value.bit_length()
    if isinstance(value, (str, bytes, bytearray)):
        return repr(value[:60]) + ("... (%d long)" % len(value) if len(value) > 60 else "")
    if isinstance(value, (tuple, list)) and depth > 0:
        inner = ", ".join(describe(v, depth - 1) for v in value[:6]) + (", ..." if len(value) > 6 else "")
        return ("(%s)" if isinstance(value, tuple) else "[%s]") % inner
    if isinstance(value, (StorageType, TensorRef, Storage, _Callable)):
        return repr(value)
    if isinstance(value, np.ndarray):
        return "a tensor of shape %s" % (value.shape,)
    return "a %s" % type(value).__name__


def describe_error(e):
    """One line for an exception raised by a library on bad data."""
    return "%s: %s" % (type(e).__name__, _printable(str(e)))


def _printable(text, limit=200):
    """Text from a file or a library, shown without quotes, control characters escaped, cut at limit."""
    return repr(text[:limit])[1:-1] + ("..." if len(text) > limit else "")


class Budget:
    """The bytes one load may allocate: BUDGET_FACTOR times the file plus BUDGET_FLOOR."""

    def __init__(self, what, file_bytes):
        self.what, self.file_bytes = what, file_bytes
        self.limit = BUDGET_FACTOR * file_bytes + BUDGET_FLOOR
        self.used = 0

    def exceeded(self):
        return ("reading it would take more than %d MB, the loader's limit for a file of %d bytes (%d times "
                "the file plus %d MB)" % (self.limit >> 20, self.file_bytes, BUDGET_FACTOR, BUDGET_FLOOR >> 20))

    def charge(self, nbytes, for_what):
        self.used += nbytes
        if self.used > self.limit:
            raise CheckpointError("%s: %s: %s" % (self.what, for_what, self.exceeded()))


class StorageType:
    """Stands for torch.<X>Storage in a pickle: a name and a dtype, nothing callable."""
    __slots__ = ("name", "dtype")

    def __init__(self, name):
        self.name, self.dtype = name, STORAGE_DTYPES[name]

    def __repr__(self):
        return "torch." + self.name


class Storage:
    """A storage a pickle refers to: its type and element count, and where its data is
    (a zip entry, or an element range of a legacy root storage); read when first needed."""
    __slots__ = ("stype", "key", "numel", "root", "offset", "source", "array")

    def __init__(self, stype, key, numel, root=None, offset=0, source=None):
        self.stype, self.key, self.numel = stype, key, numel
        self.root, self.offset, self.source, self.array = root, offset, source, None

    def __repr__(self):
        return "storage %s (%d elements of %r)" % (describe(self.key), self.numel, self.stype)


class TensorRef:
    """A tensor as the pickle rebuilds it: a strided view of a storage, checked, not yet copied."""
    __slots__ = ("storage", "offset", "size", "stride")
    __hash__ = None  # a tensor is no dictionary key

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __repr__(self):
        return "a tensor of size %s on %r" % (list(self.size), self.storage)

    def numel(self):
        count = 1
        for n in self.size:
            count *= n
        return count


# ---- the names a pickle may refer to --------------------------------------------------------------

class _Callable:
    """A name a pickle may call through REDUCE: one of this module's functions."""
    __slots__ = ("name", "function")

    def __init__(self, name, function):
        self.name, self.function = name, function

    def __repr__(self):
        return self.name


def _ordered_dict(vm, args):
    """collections.OrderedDict(), or OrderedDict(pairs) as Python 2 pickled it."""
    out = collections.OrderedDict()
    if args == ():
        return vm.new(out, (), 0)
    if len(args) != 1 or type(args[0]) not in (list, tuple):
        vm.fail("OrderedDict called with %s" % describe(args))
    values = []
    for pair in args[0]:
        if type(pair) not in (list, tuple) or len(pair) != 2:
            vm.fail("OrderedDict called with an item %s that is not a pair" % describe(pair))
        out[vm.key(pair[0])] = pair[1]
        values.append(pair[1])
    return vm.new(out, values, ORDERED_DICT_ITEM * len(values))


def _rebuild_tensor(vm, args):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])
    and _rebuild_tensor (the first four): a view of a storage, every element of which must lie in it."""
    if len(args) < 4 or len(args) > 7:
        vm.fail("a tensor rebuilt from %d arguments" % len(args))
    storage, offset, size, stride = args[:4]
    if type(storage) is not Storage:
        vm.fail("a tensor rebuilt from %s instead of a storage" % describe(storage))
    if not (type(offset) is int and type(size) is tuple and type(stride) is tuple and len(size) == len(stride)
            and all(type(x) is int for x in size + stride)):
        vm.fail("%r: malformed tensor geometry (offset %s, size %s, stride %s)" % (storage, describe(offset),
                                                                                  describe(size), describe(stride)))
    if len(size) > MAX_DIMS:
        vm.fail("%r: a tensor of %d dimensions (numpy holds %d)" % (storage, len(size), MAX_DIMS))
    if offset < 0 or any(not 0 <= x < MAX_ELEMENTS for x in size + stride):
        vm.fail("%r: offset %s, size %s, stride %s: negative or beyond 2^60" % (storage, describe(offset),
                                                                               describe(size), describe(stride)))
    tensor = TensorRef(storage, offset, size, stride)
    if tensor.numel():
        # with strides >= 0 the elements reached are offset + sum(i_d * stride_d), 0 <= i_d < size_d:
        # all of them lie in [offset, last], so the storage must hold element `last`
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if last >= storage.numel:
            vm.fail("%r: a tensor of size %s, stride %s at offset %d reaches element %d" % (
                storage, list(size), list(stride), offset, last))
    vm.charge(200 + 16 * len(size))
    return tensor


def _rebuild_parameter(vm, args):
    """torch._utils._rebuild_parameter(data, requires_grad, backward_hooks): the tensor itself."""
    if not 3 <= len(args) <= 4 or type(args[0]) is not TensorRef:
        vm.fail("a parameter rebuilt from %s" % describe(args))
    return args[0]


def _names(tensors):
    """The table of names a pickle may use, made anew for each load."""
    table = {("collections", "OrderedDict"): _Callable("collections.OrderedDict", _ordered_dict)}
    if tensors:
        for name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            table[("torch._utils", name)] = _Callable("torch._utils." + name, _rebuild_tensor)
        table[("torch._utils", "_rebuild_parameter")] = _Callable("torch._utils._rebuild_parameter",
                                                                  _rebuild_parameter)
        for name in STORAGE_DTYPES:
            table[("torch", name)] = StorageType(name)
    return table


# ---- the pickle interpreter --------------------------------------------------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")
_OPS = {}


def _op(code):
    def register(method):
        _OPS[code[0]] = method
        return method
    return register


class _Interpreter:
    """Runs one pickle of `data` from `start`: run() returns (object, offset after STOP).

    The stack holds the objects since the last MARK; `marks` the stacks under the MARKs.
    `depths` maps every container this pickle built to its nesting depth (and keeps it alive,
    so that ids are not reused); `sealed` holds the containers put inside another one, which
    may no longer change: depths stay exact, and no container can come to contain itself."""

    def __init__(self, data, start, what, budget, names, persistent_load=None):
        self.data, self.pos, self.what, self.budget = data, start, what, budget
        self.names, self.persistent_load = names, persistent_load
        self.stack, self.marks, self.memo = [], [], {}
        self.depths, self.sealed = {}, set()
        self.op_at, self.result = start, None

    def fail(self, message):
        raise CheckpointError("%s: offset %d: %s" % (self.what, self.op_at, message))

    def charge(self, nbytes):
        budget = self.budget
        budget.used += nbytes
        if budget.used > budget.limit:
            self.fail(budget.exceeded())

    def run(self):
        data, ops = self.data, _OPS
        while True:
            self.op_at = self.pos
            if self.pos >= len(data):
                self.fail("the pickle ends without a STOP opcode")
            code = data[self.pos]
            self.pos += 1
            op = ops.get(code)
            if op is None:
                self.fail("unknown opcode 0x%02x" % code)
            self.charge(SLOT)
            if op(self):
                return self.result, self.pos

    # reading the opcodes' arguments
    def take(self, n):
        if n < 0:
            self.fail("a negative length")
        if n > len(self.data) - self.pos:
            self.fail("cut short: %s bytes wanted, %d left" % (describe(n), len(self.data) - self.pos))
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self):
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            self.fail("a text argument without its line end")
        chunk = self.data[self.pos:end]
        self.pos = end + 1
        return chunk

    def text(self, raw):
        try:
            return raw.decode("utf-8")  # strict: no surrogates, which no model file can hold
        except UnicodeDecodeError as e:
            self.fail("a string that is not UTF-8 (%s at byte %d)" % (e.reason, e.start))

    def number(self, raw, parse):
        try:
            return parse(raw.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            self.fail("a malformed number %s" % describe(raw))

    # the stack
    def push(self, obj):
        self.charge(sys.getsizeof(obj) if type(obj) in (int, float, str, bytes, bytearray) else 0)
        self.stack.append(obj)

    def pop(self):
        if not self.stack:
            self.fail("pops an empty stack")
        return self.stack.pop()

    def top(self):
        if not self.stack:
            self.fail("expects an object on an empty stack")
        return self.stack[-1]

    def pop_mark(self):
        if not self.marks:
            self.fail("no MARK to go back to")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def pop_n(self, n):
        if len(self.stack) < n:
            self.fail("pops an empty stack")
        items = self.stack[-n:]
        del self.stack[-n:]
        return items

    # containers: depth, sealing, keys
    def contain(self, container, items):
        depth = 1
        entry = self.depths.get(id(container))
        if entry is not None:
            depth = entry[0]
        for item in items:
            if item is container:
                self.fail("a %s that contains itself" % type(container).__name__)
            inner = self.depths.get(id(item))
            if inner is not None:
                self.sealed.add(id(item))
                depth = max(depth, inner[0] + 1)
        if depth > MAX_DEPTH:
            self.fail("containers nested more than %d deep" % MAX_DEPTH)
        self.depths[id(container)] = (depth, container)

    def new(self, container, items, nbytes):
        """A container this pickle built, holding items (nbytes: their slots)."""
        self.charge(sys.getsizeof(container) + nbytes + TRACKED)
        self.contain(container, items)
        return container

    def change(self, container, kind, items):
        """Before adding items to the container below them on the stack."""
        if type(container) not in kind:
            self.fail("adds items to %s" % describe(container))
        if id(container) in self.sealed:
            self.fail("changes a %s after putting it in another container" % type(container).__name__)
        self.contain(container, items)

    def key(self, key):
        kind = type(key)
        if kind in (str, bytes, bool) or key is None or (kind is int and -MAX_KEY < key < MAX_KEY):
            return key
        self.fail("a dictionary key or set member that is %s (only strings and integers below 2^60)"
                  % describe(key))

    def set_items(self, target, items):
        if len(items) % 2:
            self.fail("an odd number of items for a dictionary")
        values = items[1::2]
        self.change(target, (dict, collections.OrderedDict), values)
        cost = ORDERED_DICT_ITEM if type(target) is collections.OrderedDict else DICT_ITEM
        self.charge(cost * len(values))
        for i in range(0, len(items), 2):
            target[self.key(items[i])] = items[i + 1]

    def memo_put(self, index):
        if index < 0:
            self.fail("a negative memo index")
        if index not in self.memo:
            self.charge(MEMO_ITEM + sys.getsizeof(index))
        self.memo[index] = self.top()

    def memo_get(self, index):
        try:
            self.stack.append(self.memo[index])
        except KeyError:
            self.fail("memo entry %s was never stored" % describe(index))

    def find(self, module, name):
        obj = self.names.get((module, name))
        if obj is None:
            self.fail("the pickle refers to %s.%s, which a checkpoint of tensors never needs; refusing to load it "
                      "(it could run code)" % (_printable(module), _printable(name)))
        self.stack.append(obj)

    def persistent(self, pid):
        if self.persistent_load is None:
            self.fail("a reference to data outside the pickle (persistent id %s), which this file cannot have"
                      % describe(pid))
        self.stack.append(self.persistent_load(self, pid))

    # ---- opcodes with code of their own (the simple ones are in the tables below the class) ----
    @_op(pickle.INT)
    def op_int(self):
        raw = self.line()
        self.push(True if raw == b"01" else False if raw == b"00" else self.number(raw, int))  # protocol 0's bools

    @_op(pickle.LONG)
    def op_long(self):
        raw = self.line()
        self.push(self.number(raw[:-1] if raw.endswith(b"L") else raw, int))

    @_op(pickle.LONG1)
    def op_long1(self):
        self.push(int.from_bytes(self.take(self.unpack("<B")), "little", signed=True))

    @_op(pickle.LONG4)
    def op_long4(self):
        self.push(int.from_bytes(self.take(self.unpack("<i")), "little", signed=True))

    @_op(pickle.FLOAT)
    def op_float(self):
        self.push(self.number(self.line(), float))

    @_op(pickle.STRING)
    def op_string(self):
        raw = self.line().rstrip()
        if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
            self.fail("a STRING argument that is not quoted")
        try:
            value = codecs.escape_decode(raw[1:-1])[0]
        except ValueError as e:
            self.fail("a malformed STRING argument (%s)" % e)
        self.push(self.text(value))  # a Python 2 str, decoded as torch.load does (UTF-8)

    @_op(pickle.UNICODE)
    def op_unicode(self):
        try:
            value = self.line().decode("raw-unicode-escape")
        except UnicodeDecodeError as e:
            self.fail("a malformed UNICODE argument (%s)" % e.reason)
        if _SURROGATE.search(value):
            self.fail("a string holding a lone surrogate, which is not text")
        self.push(value)

    @_op(pickle.EMPTY_LIST)
    def op_empty_list(self):
        self.stack.append(self.new([], (), 0))

    @_op(pickle.LIST)
    def op_list(self):
        items = self.pop_mark()
        self.stack.append(self.new(list(items), items, LIST_ITEM * len(items)))

    @_op(pickle.APPEND)
    def op_append(self):
        self.add_to_list(self.pop_n(1))

    @_op(pickle.APPENDS)
    def op_appends(self):
        self.add_to_list(self.pop_mark())

    def add_to_list(self, items):
        target = self.top()
        self.change(target, (list,), items)
        self.charge(LIST_ITEM * len(items))
        target.extend(items)

    @_op(pickle.TUPLE)
    def op_tuple(self):
        items = self.pop_mark()
        self.stack.append(self.new(tuple(items), items, 0))

    def op_tuple_n(self, n):
        items = self.pop_n(n)
        self.stack.append(self.new(tuple(items), items, 0))

    @_op(pickle.EMPTY_DICT)
    def op_empty_dict(self):
        self.stack.append(self.new({}, (), 0))

    @_op(pickle.DICT)
    def op_dict(self):
        items = self.pop_mark()
        target = self.new({}, (), 0)
        self.set_items(target, items)
        self.stack.append(target)

    @_op(pickle.SETITEM)
    def op_setitem(self):
        items = self.pop_n(2)
        self.set_items(self.top(), items)

    @_op(pickle.SETITEMS)
    def op_setitems(self):
        items = self.pop_mark()
        self.set_items(self.top(), items)

    @_op(pickle.EMPTY_SET)
    def op_empty_set(self):
        self.stack.append(self.new(set(), (), 0))

    @_op(pickle.ADDITEMS)
    def op_additems(self):
        items = self.pop_mark()
        target = self.top()
        self.change(target, (set,), items)
        self.charge(SET_ITEM * len(items))
        target.update(self.key(k) for k in items)

    @_op(pickle.FROZENSET)
    def op_frozenset(self):
        items = self.pop_mark()
        self.charge(SET_ITEM * len(items))
        self.stack.append(self.new(frozenset(self.key(k) for k in items), items, 0))

    @_op(pickle.POP)
    def op_pop(self):
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    @_op(pickle.DUP)
    def op_dup(self):
        self.stack.append(self.top())

    @_op(pickle.MARK)
    def op_mark(self):
        if len(self.marks) >= MAX_DEPTH:
            self.fail("MARKs nested more than %d deep" % MAX_DEPTH)
        self.charge(MARK_COST)
        self.marks.append(self.stack)
        self.stack = []

    @_op(pickle.POP_MARK)
    def op_pop_mark(self):
        self.pop_mark()

    @_op(pickle.GET)
    def op_get(self):
        self.memo_get(self.number(self.line(), int))

    @_op(pickle.PUT)
    def op_put(self):
        self.memo_put(self.number(self.line(), int))

    @_op(pickle.MEMOIZE)
    def op_memoize(self):
        self.memo_put(len(self.memo))

    @_op(pickle.GLOBAL)
    def op_global(self):
        module = self.text(self.line())
        self.find(module, self.text(self.line()))

    @_op(pickle.STACK_GLOBAL)
    def op_stack_global(self):
        module, name = self.pop_n(2)
        if type(module) is not str or type(name) is not str:
            self.fail("STACK_GLOBAL of %s and %s" % (describe(module), describe(name)))
        self.find(module, name)

    @_op(pickle.REDUCE)
    def op_reduce(self):
        func, args = self.pop_n(2)
        if type(func) is not _Callable:
            self.fail("calls %s, which is not a function a checkpoint may call" % describe(func))
        if type(args) is not tuple:
            self.fail("calls %r with %s instead of an argument tuple" % (func, describe(args)))
        self.stack.append(func.function(self, args))

    @_op(pickle.BUILD)
    def op_build(self):
        self.pop()  # the state: a state dict's attributes (its _metadata), which nothing here reads
        target = self.top()
        if type(target) not in (dict, collections.OrderedDict):
            self.fail("sets the attributes of %s (BUILD); only a state dict's may be set" % describe(target))

    @_op(pickle.INST)
    def op_inst(self):
        module, name = self.line(), self.line()
        self.fail("creates an instance of %s.%s (INST); refusing to load it (it could run code)"
                  % (describe(module), describe(name)))

    @_op(pickle.PERSID)
    def op_persid(self):
        self.persistent(self.text(self.line()))

    @_op(pickle.BINPERSID)
    def op_binpersid(self):
        self.persistent(self.pop())

    @_op(pickle.PROTO)
    def op_proto(self):
        proto = self.unpack("<B")
        if proto > 5:
            self.fail("pickle protocol %d (this reader knows 0 to 5)" % proto)

    @_op(pickle.FRAME)
    def op_frame(self):
        self.unpack("<Q")  # protocol 4's framing: the bytes are all here already

    @_op(pickle.STOP)
    def op_stop(self):
        self.result = self.pop()
        return True


# the simple opcodes: constants, fixed-size numbers, sized strings, short tuples, the memo
for _code, _value in ((pickle.NONE, None), (pickle.NEWTRUE, True), (pickle.NEWFALSE, False), (pickle.EMPTY_TUPLE, ())):
    _OPS[_code[0]] = lambda vm, value=_value: vm.stack.append(value)
for _code, _fmt in ((pickle.BININT, "<i"), (pickle.BININT1, "<B"), (pickle.BININT2, "<H"), (pickle.BINFLOAT, ">d")):
    _OPS[_code[0]] = lambda vm, fmt=_fmt: vm.push(vm.unpack(fmt))
for _code, _fmt, _make in ((pickle.SHORT_BINUNICODE, "<B", _Interpreter.text),
                           (pickle.BINUNICODE, "<I", _Interpreter.text),
                           (pickle.BINUNICODE8, "<Q", _Interpreter.text),
                           (pickle.SHORT_BINSTRING, "<B", _Interpreter.text),  # Python 2 str, as UTF-8
                           (pickle.BINSTRING, "<i", _Interpreter.text),
                           (pickle.SHORT_BINBYTES, "<B", lambda vm, raw: raw),
                           (pickle.BINBYTES, "<I", lambda vm, raw: raw),
                           (pickle.BINBYTES8, "<Q", lambda vm, raw: raw),
                           (pickle.BYTEARRAY8, "<Q", lambda vm, raw: bytearray(raw))):
    _OPS[_code[0]] = lambda vm, fmt=_fmt, make=_make: vm.push(make(vm, vm.take(vm.unpack(fmt))))
for _code, _n in ((pickle.TUPLE1, 1), (pickle.TUPLE2, 2), (pickle.TUPLE3, 3)):
    _OPS[_code[0]] = lambda vm, n=_n: vm.op_tuple_n(n)
for _code, _fmt in ((pickle.BINGET, "<B"), (pickle.LONG_BINGET, "<I")):
    _OPS[_code[0]] = lambda vm, fmt=_fmt: vm.memo_get(vm.unpack(fmt))
for _code, _fmt in ((pickle.BINPUT, "<B"), (pickle.LONG_BINPUT, "<I")):
    _OPS[_code[0]] = lambda vm, fmt=_fmt: vm.memo_put(vm.unpack(fmt))
# and those a file of data never needs, refused
for _codes, _why in (((pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX), "creates an instance of a class (OBJ, NEWOBJ)"),
                     ((pickle.EXT1, pickle.EXT2, pickle.EXT4), "names an object of the copyreg extension registry"),
                     ((pickle.NEXT_BUFFER, pickle.READONLY_BUFFER), "uses an out-of-band buffer")):
    for _code in _codes:
        _OPS[_code[0]] = lambda vm, why=_why: vm.fail("%s; refusing to load it (it could run code)" % why)


def _unpickle(data, start, what, budget, names=None, persistent_load=None):
    """(object, offset after it) of the pickle at data[start:]."""
    return _Interpreter(data, start, what, budget, names if names is not None else {}, persistent_load).run()


# ---- tensors ---------------------------------------------------------------------------------------

_NOT_DATA = (StorageType, Storage, _Callable)  # what a pickle may use, but not hand back


def _copy_out(tensor, storages, budget):
    """The numpy array of a TensorRef, copied out of its storage (charged to the budget)."""
    storage = tensor.storage
    count, itemsize = tensor.numel(), storage.stype.dtype.itemsize
    bfloat16 = storage.stype.name == "BFloat16Storage"
    budget.charge(count * (itemsize + (4 if bfloat16 else 0)), repr(tensor))
    if count == 0:
        out = np.zeros(tensor.size, dtype=storage.stype.dtype)
    else:
        data = storages.array(storage)[tensor.offset:]
        strides = [st * itemsize if n > 1 else 0 for n, st in zip(tensor.size, tensor.stride)]
        out = np.array(np.lib.stride_tricks.as_strided(data, shape=tensor.size, strides=strides, writeable=False))
    if bfloat16:
        wide = out.astype(np.uint32)
        wide <<= 16
        out = wide.view(np.float32)
    return out


def _copy_tensors(obj, storages, budget, done):
    """obj with every TensorRef in it replaced by its array: dicts and lists changed in place,
    tuples rebuilt. `done` maps the id of each object already handled to its result (the
    objects are shared, never cyclic, and at most MAX_DEPTH deep)."""
    kind = type(obj)
    if kind in _NOT_DATA:
        raise CheckpointError("%s: the checkpoint holds %r itself, not data made with it" % (budget.what, obj))
    if kind not in (TensorRef, dict, collections.OrderedDict, list, tuple):
        return obj
    seen = done.get(id(obj))
    if seen is not None:
        return seen[1]
    if kind is TensorRef:
        out = _copy_out(obj, storages, budget)
    elif kind is tuple:
        items = tuple(_copy_tensors(x, storages, budget, done) for x in obj)
        out = obj if all(a is b for a, b in zip(items, obj)) else items
    elif kind is list:
        obj[:] = [_copy_tensors(x, storages, budget, done) for x in obj]
        out = obj
    else:
        for k in list(obj):
            obj[k] = _copy_tensors(obj[k], storages, budget, done)
        out = obj
    done[id(obj)] = (obj, out)
    return out


def _holds_tensors(obj, done):
    """Whether obj holds a tensor (or something that is no data, which _copy_tensors refuses)."""
    kind = type(obj)
    if kind is TensorRef or kind in _NOT_DATA:
        return True
    if kind not in (dict, collections.OrderedDict, list, tuple):
        return False
    if id(obj) not in done:
        done[id(obj)] = any(_holds_tensors(x, done) for x in (obj.values() if isinstance(obj, dict) else obj))
    return done[id(obj)]


# ---- the two layouts ----------------------------------------------------------------------------------

def _storage_pid(vm, pid, lengths):
    """The fields of a persistent id ('storage', type, key, location, numel[, view]) of `lengths`."""
    if not (type(pid) is tuple and len(pid) in lengths and pid[0] == "storage" and type(pid[1]) is StorageType
            and type(pid[2]) is str and type(pid[3]) is str and type(pid[4]) is int):
        vm.fail("a malformed storage reference %s" % describe(pid))
    if not 0 <= pid[4] < MAX_ELEMENTS:
        vm.fail("storage %s has element count %s" % (describe(pid[2]), describe(pid[4])))
    return pid


class _ZipStorages:
    """The storages of a zip checkpoint: <prefix>data/<key>, each read when a tensor needs it."""

    def __init__(self, z, prefix, path, budget):
        self.z, self.prefix, self.path, self.budget, self.storages = z, prefix, path, budget, {}

    def declare(self, vm, pid):
        _, stype, key, _, numel = _storage_pid(vm, pid, (5,))
        known = self.storages.get(key)
        if known is not None:
            if (known.stype.name, known.numel) != (stype.name, numel):
                vm.fail("storage %s declared as %d elements of %r and as %d of %r" % (
                    describe(key), known.numel, known.stype, numel, stype))
            return known
        name = self.prefix + "data/" + key
        info = _zip_entry(self.z, name, self.path, vm.fail)
        need = numel * stype.dtype.itemsize
        if info.file_size != need:
            vm.fail("storage %s holds %d bytes, but %d elements of %r need %d" % (
                describe(key), info.file_size, numel, stype, need))
        vm.charge(300 + len(key))
        storage = self.storages[key] = Storage(stype, key, numel, source=info)
        return storage

    def array(self, storage):
        if storage.array is None:
            self.budget.charge(storage.source.file_size, repr(storage))
            raw = _zip_read(self.z, storage.source, self.path)
            storage.array = np.frombuffer(raw, dtype=storage.stype.dtype)
        return storage.array


_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError, OverflowError,
               struct.error, UnicodeDecodeError, NotImplementedError, RuntimeError)


def _zip_entry(z, name, path, fail):
    """The ZipInfo of an entry zipfile can read without a password or an unusual codec."""
    try:
        info = z.getinfo(name)
    except KeyError:
        fail("%s is missing from the archive" % describe(name))
    if info.flag_bits & 0x1:
        fail("entry %s is encrypted" % describe(name))
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        fail("entry %s uses compression method %d (only stored and deflated entries are read)"
             % (describe(name), info.compress_type))
    return info


def _zip_read(z, info, path):
    """The bytes of an entry: exactly its declared size, never more (and its CRC checked)."""
    try:
        with z.open(info) as f:
            raw = f.read(info.file_size)  # reading the last byte checks the CRC
    except _ZIP_ERRORS as e:
        raise CheckpointError("%s: entry %s: %s" % (path, describe(info.filename), describe_error(e))) from None
    if len(raw) != info.file_size:
        raise CheckpointError("%s: entry %s holds %d of its %d bytes" % (path, describe(info.filename), len(raw),
                                                                       info.file_size))
    return raw


def _load_zip(f, path, budget):
    try:
        z = zipfile.ZipFile(f)
    except _ZIP_ERRORS as e:
        raise CheckpointError("%s: corrupt zip checkpoint (%s)" % (path, describe_error(e))) from None
    infos = z.infolist()
    budget.charge(sum(ZIP_ENTRY + len(i.filename) + len(i.extra) + len(i.comment) for i in infos),
                  "its zip directory of %d entries" % len(infos))

    def fail(message):
        raise CheckpointError("%s: %s" % (path, message))

    names = {i.filename for i in infos}
    pkls = [i.filename for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if len(pkls) != 1:
        fail("a zip checkpoint holds exactly one <name>/data.pkl (found %d)" % len(pkls))
    prefix = pkls[0][:-len("data.pkl")]
    if prefix + "byteorder" in names:
        order = _zip_entry(z, prefix + "byteorder", path, fail)
        if order.file_size > 16 or _zip_read(z, order, path).strip() not in (b"little", b""):
            fail("a big-endian checkpoint, or a malformed byteorder entry")
    info = _zip_entry(z, pkls[0], path, fail)
    budget.charge(info.file_size, pkls[0])
    data = _zip_read(z, info, path)
    storages = _ZipStorages(z, prefix, path, budget)
    obj, _ = _unpickle(data, 0, "%s (%s)" % (path, pkls[0]), budget, _names(True), storages.declare)
    return obj, storages


class _LegacyStorages:
    """The storages of a legacy checkpoint: roots by key, each found in the data section that
    follows the pickles; views of roots as the pickle names them."""

    def __init__(self, path):
        self.path, self.roots, self.views, self.arrays = path, {}, {}, {}

    def declare(self, vm, pid):
        _, stype, key, _, numel = _storage_pid(vm, pid, (5, 6))[:5]
        root = self.roots.get(key)
        if root is None:
            vm.charge(300 + len(key))
            root = self.roots[key] = Storage(stype, key, numel)
        elif (root.stype.name, root.numel) != (stype.name, numel):
            vm.fail("storage %s declared as %d elements of %r and as %d of %r" % (
                describe(key), root.numel, root.stype, numel, stype))
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return root
        if not (type(view) is tuple and len(view) == 3 and type(view[0]) is str
                and type(view[1]) is int and type(view[2]) is int):
            vm.fail("a malformed storage view %s" % describe(view))
        view_key, offset, size = view
        if not (0 <= offset and 0 <= size and offset + size <= numel):
            vm.fail("view [%s, %s + %s) of %r" % (describe(offset), describe(offset), describe(size), root))
        known = self.views.get(view_key)
        if known is None:
            vm.charge(300 + len(view_key))
            known = self.views[view_key] = Storage(stype, view_key, size, root=root, offset=offset)
        elif known.root is not root or (known.offset, known.numel) != (offset, size):
            vm.fail("storage view %s declared twice differently" % describe(view_key))
        return known

    def locate(self, data, pos, keys):
        """Find each listed storage's data from pos: an 8-byte element count, then the elements."""
        if type(keys) is not list or not all(type(k) is str for k in keys):
            raise CheckpointError("%s: malformed storage key list" % self.path)
        for key in keys:
            root = self.roots.get(key)
            if root is None or key in self.arrays:
                raise CheckpointError("%s: storage %s is listed %s" % (
                    self.path, describe(key), "twice" if root else "but never used"))
            if pos + 8 > len(data):
                raise CheckpointError("%s: cut short before storage %s (offset %d)" % (self.path, describe(key), pos))
            (count,) = struct.unpack_from("<q", data, pos)
            nbytes = count * root.stype.dtype.itemsize
            if count != root.numel or pos + 8 + nbytes > len(data):
                raise CheckpointError("%s: storage %s at offset %d: %d elements recorded, %d declared, %d bytes left"
                                      % (self.path, describe(key), pos, count, root.numel, len(data) - pos - 8))
            self.arrays[key] = np.frombuffer(data, dtype=root.stype.dtype, count=count, offset=pos + 8)
            pos += 8 + nbytes
        missing = [k for k in self.roots if k not in self.arrays]
        if missing:
            raise CheckpointError("%s: storages %s have no data" % (self.path, describe(missing)))

    def array(self, storage):
        if storage.root is None:
            return self.arrays[storage.key]
        return self.arrays[storage.root.key][storage.offset:storage.offset + storage.numel]


def _load_legacy(data, path, budget):
    what = path
    magic, pos = _unpickle(data, 0, what, budget)
    if magic != LEGACY_MAGIC:
        raise CheckpointError("%s: neither a zip nor a legacy PyTorch checkpoint" % path)
    protocol, pos = _unpickle(data, pos, what, budget)
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError("%s: unsupported legacy protocol version %s" % (path, describe(protocol)))
    info, pos = _unpickle(data, pos, what, budget)
    if isinstance(info, dict) and info.get("little_endian") is False:
        raise CheckpointError("%s: big-endian checkpoint" % path)
    storages = _LegacyStorages(path)
    obj, pos = _unpickle(data, pos, what, budget, _names(True), storages.declare)
    keys, pos = _unpickle(data, pos, what, budget)
    storages.locate(data, pos, keys)
    return obj, storages


def open_regular(path):
    """(open binary file, its size) of a regular file; anything else is refused (/dev/zero
    would never end, a FIFO would block)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the open
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CheckpointError("%s: not a regular file" % path)
    return os.fdopen(fd, "rb"), st.st_size


def _open_with_budget(path):
    f, size = open_regular(path)
    return f, size, Budget(path, size)


def _read_all(f, size, budget, path):
    budget.charge(size, "its bytes")
    data = f.read(size)
    if len(data) != size:
        raise CheckpointError("%s: the file shrank while being read" % path)
    return data


def _parse_checkpoint(f, size, budget, path):
    """(object with TensorRefs, storages) of an open checkpoint file."""
    head = f.read(4)
    f.seek(0)
    if head[:2] == b"PK":
        return _load_zip(f, path, budget)
    if head[:1] == b"\x80":
        return _load_legacy(_read_all(f, size, budget, path), path, budget)
    raise CheckpointError("%s: not a PyTorch checkpoint (starts with %s)" % (path, describe(head)))


def load_checkpoint(path):
    """The object saved in a PyTorch checkpoint, with every tensor as a numpy array."""
    f, size, budget = _open_with_budget(path)
    with f:
        obj, storages = _parse_checkpoint(f, size, budget, path)
        return _copy_tensors(obj, storages, budget, {})


def load_state_dict(path):
    """(state_dict, entries) of a checkpoint: the model's tensors by name as numpy arrays, names
    as saved (a 'module.' prefix kept), and the checkpoint's other top-level entries that hold no
    tensor (epoch, lr_base, conventions...). The state dict is the checkpoint's first entry
    among STATE_DICT_KEYS that is a dict, else the checkpoint itself (entries then empty).
    Tensors elsewhere, such as an optimizer's state, are parsed and checked but not copied out."""
    f, size, budget = _open_with_budget(path)
    with f:
        obj, storages = _parse_checkpoint(f, size, budget, path)
        key = next((k for k in STATE_DICT_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
        if key is None:
            return _copy_tensors(obj, storages, budget, {}), {}
        holds = {}
        entries = {k: v for k, v in obj.items() if k != key and not _holds_tensors(v, holds)}
        return _copy_tensors(obj[key], storages, budget, {}), entries


def load_pickle(path):
    """A plain pickle (dictionary.pkl, trainval_label2ans.pkl) read by the same interpreter, under
    the same budget; it may use OrderedDict but nothing else by name, and no tensors."""
    f, size, budget = _open_with_budget(path)
    with f:
        data = _read_all(f, size, budget, path)
    obj, _ = _unpickle(data, 0, path, budget, _names(tensors=False))
    return _copy_tensors(obj, None, budget, {})  # no tensors, but nothing else that is not data either
