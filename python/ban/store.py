"""The feature store of `ban features import` (docs/STORE.md, versions 2 and 1), read in place.

    s = ban.store.FeatureStore("val2014.store")
    rec = s.find("458752")        # by image id (a string; an int is read as its decimal text); None if absent
    rec.features, rec.spatials    # (n, D) and (n, 6) float32 views of the mapped file

The header, the index and the ids are checked on open as docs/STORE.md says a reader must
(sizes, offsets and counts within the file, ids well formed and sorted), so that no lookup
reads outside the file; the floats are not read (the importer refused NaN and infinities;
ban.h checks again). This is the package's one reader of the format (examples/dask_vqa.py
uses it).
"""
import collections
import re
import struct

import numpy as np

_HEADER = struct.Struct("<4sIIIQQQQQII")
_COMMON = [("offset", "<u8"), ("n_boxes", "<u4"), ("width", "<u4"), ("height", "<u4")]
_ENTRY = {2: np.dtype([("id_offset", "<u8")] + _COMMON + [("id_length", "<u4")]),
          1: np.dtype([("image_id", "<i8")] + _COMMON + [("reserved", "<u4")])}
_ID = re.compile(rb"[A-Za-z0-9_.-]{1,64}\Z")
MAX_BOXES, MAX_DIM, MAX_SIDE = 1024, 65536, 1000000

Record = collections.namedtuple("Record", "image_id n_boxes width height offset features boxes spatials")
Record.__doc__ = """One image of the store: its id, its n boxes' features (n, D), pixel boxes (n, 4)
x1, y1, x2, y2 and spatial features (n, 6) (views of the mapping), the image size and the
record's offset in the file (records lie in import order)."""


class StoreError(ValueError):
    """A file that is not a valid feature store (the message names the file and the field)."""


class FeatureStore:
    """A feature store mapped read-only. Attributes: path, version, feature_dim, max_boxes,
    image_ids (the ids in index order, str), entries (the index as a NumPy structured array:
    offset, n_boxes, width, height, ...). Methods: find, index_of, record. Safe to share
    between threads."""

    def __init__(self, path):
        self.path = str(path)
        self._map = np.memmap(self.path, np.uint8, "r")
        size = len(self._map)
        if size < _HEADER.size:
            raise StoreError("%s: %d bytes, too short for the 64-byte header" % (self.path, size))
        (magic, version, dim, align, n_images, n_boxes, data_off, data_size, index_off, max_boxes,
         flags) = _HEADER.unpack_from(self._map, 0)
        ids_off = index_off + 32 * n_images
        fail = None
        if magic != b"BANF":
            fail = "not a feature store (magic %r)" % magic
        elif version not in _ENTRY:
            fail = "format version %d; this reader reads versions 1 and 2" % version
        elif not 1 <= dim <= MAX_DIM or align != 64 or flags != 0:
            fail = "offset 8: feature_dim %d, alignment %d, flags %d (expected 1..%d, 64, 0)" % (dim, align, flags,
                                                                                               MAX_DIM)
        elif data_off != 64 or index_off != data_off + data_size or index_off % 8 or ids_off > size or \
                (version == 1 and ids_off != size):
            fail = "offset 32: data at %d (%d bytes) and an index of %d entries at %d do not fit the %d-byte file" % (
                data_off, data_size, n_images, index_off, size)
        if fail:
            raise StoreError("%s: %s" % (self.path, fail))
        e = np.frombuffer(self._map, _ENTRY[version], n_images, index_off)
        n, off = e["n_boxes"].astype(np.int64), e["offset"]
        end = off.astype(np.int64) + n * (dim + 10) * 4  # (an offset past 2^63 fails off >= index_off)
        bad = ((n < 1) | (n > min(MAX_BOXES, max_boxes)) | (off % 64 != 0) | (off < data_off) | (off >= index_off) |
               (end > index_off) | (e["width"] < 1) | (e["width"] > MAX_SIDE) | (e["height"] < 1) |
               (e["height"] > MAX_SIDE))
        ids = self._ids(e, version, ids_off, size, bad)
        if bad.any():
            i = int(np.argmax(bad))
            raise StoreError("%s: index entry %d (offset %d) is invalid: its id, box count, size or record" % (
                self.path, i, index_off + 32 * i))
        if int(n.sum()) != n_boxes or (n_images and int(n.max()) != max_boxes):
            raise StoreError("%s: offset 24: the header's box total %d and maximum %d disagree with the index" % (
                self.path, n_boxes, max_boxes))
        self.version, self.feature_dim, self.max_boxes, self.entries = version, dim, max_boxes, e
        self.image_ids = ids
        self._where = {image_id: i for i, image_id in enumerate(ids)}

    def _ids(self, e, version, ids_off, size, bad):
        """The ids as str, marking in bad the entries whose id breaks the rules."""
        if version == 1:  # int64 ids, read as their decimal text, in numeric order
            bad |= e["reserved"] != 0
            bad[1:] |= e["image_id"][1:] <= e["image_id"][:-1]
            return [str(int(i)) for i in e["image_id"]]
        raw = bytes(self._map[ids_off:size]).split(b"\0")
        if len(raw) != len(e) + 1 or raw[-1]:
            raise StoreError("%s: offset %d: %d ids (NUL-terminated) do not fill the end of the file" % (
                self.path, ids_off, len(e)))
        at = ids_off
        for i, (image_id, entry) in enumerate(zip(raw, e)):
            bad[i] |= entry["id_offset"] != at or entry["id_length"] != len(image_id) or not _ID.match(image_id) or \
                (i > 0 and (len(raw[i - 1]), raw[i - 1]) >= (len(image_id), image_id))  # shorter first, then bytes
            at += len(image_id) + 1
        return [i.decode("ascii") for i in raw[:-1]]

    def __len__(self):
        return len(self.entries)

    def __repr__(self):
        return "<ban.store.FeatureStore %s: %d images, %d-d features>" % (self.path, len(self), self.feature_dim)

    def index_of(self, image_id):
        """The image's place in the index, or -1 when it is absent. Ids are strings compared as
        they are ("042" is not "42"); an int is looked up as its decimal text."""
        if isinstance(image_id, bytes):
            image_id = image_id.decode("ascii", "replace")
        return self._where.get(str(image_id) if isinstance(image_id, int) else image_id, -1)

    def record(self, i):
        """The Record of index entry i."""
        e = self.entries[i]
        n, D = int(e["n_boxes"]), self.feature_dim
        rec = np.frombuffer(self._map, "<f4", n * (D + 10), int(e["offset"]))
        return Record(self.image_ids[i], n, int(e["width"]), int(e["height"]), int(e["offset"]),
                      rec[:n * D].reshape(n, D), rec[n * D:n * (D + 4)].reshape(n, 4), rec[n * (D + 4):].reshape(n, 6))

    def find(self, image_id):
        """The Record of an image id, or None when the store does not hold it."""
        i = self.index_of(image_id)
        return None if i < 0 else self.record(i)
