"""The feature store of `ban features import` (docs/STORE.md), read in place.

    s = ban.store.FeatureStore("val2014.store")
    rec = s.find(image_id)        # None when the image is absent
    rec.features, rec.spatials    # (n, D) and (n, 6) float32 views of the mapped file

The header and the index are checked on open as docs/STORE.md says a reader must (sizes,
offsets and counts within the file, ids sorted), so that no lookup reads outside the file;
the floats are not read (the importer refused NaN and infinities; ban.h checks again).
This is the only Python reader of the format in the package (examples/dask_vqa.py uses it).
"""
import collections
import struct

import numpy as np

_HEADER = struct.Struct("<4sIIIQQQQQII")
_ENTRY = np.dtype([("image_id", "<i8"), ("offset", "<u8"), ("n_boxes", "<u4"), ("width", "<u4"),
                   ("height", "<u4"), ("reserved", "<u4")])
MAX_BOXES, MAX_DIM, MAX_SIDE = 1024, 65536, 1000000

Record = collections.namedtuple("Record", "image_id n_boxes width height offset features boxes spatials")
Record.__doc__ = """One image of the store: its n boxes' features (n, D), pixel boxes (n, 4) x1, y1,
x2, y2 and spatial features (n, 6) (views of the mapping), the image size and the record's
offset in the file (records lie in import order)."""


class StoreError(ValueError):
    """A file that is not a valid feature store (the message names the file and the field)."""


class FeatureStore:
    """A feature store mapped read-only. Attributes: path, feature_dim, max_boxes, image_ids
    (sorted int64 array), entries (the index as a NumPy structured array). Methods: find,
    record. Safe to share between threads."""

    def __init__(self, path):
        self.path = str(path)
        self._map = np.memmap(self.path, np.uint8, "r")
        size = len(self._map)
        if size < _HEADER.size:
            raise StoreError("%s: %d bytes, too short for the 64-byte header" % (self.path, size))
        (magic, version, dim, align, n_images, n_boxes, data_off, data_size, index_off, max_boxes,
         flags) = _HEADER.unpack_from(self._map, 0)
        fail = None
        if magic != b"BANF":
            fail = "not a feature store (magic %r)" % magic
        elif version != 1:
            fail = "format version %d; this reader reads version 1" % version
        elif not 1 <= dim <= MAX_DIM or align != 64 or flags != 0:
            fail = "offset 8: feature_dim %d, alignment %d, flags %d (expected 1..%d, 64, 0)" % (dim, align, flags,
                                                                                               MAX_DIM)
        elif data_off != 64 or index_off != data_off + data_size or index_off % 8 or \
                index_off + 32 * n_images != size:
            fail = "offset 32: data at %d (%d bytes) and index at %d do not fill the %d-byte file" % (
                data_off, data_size, index_off, size)
        if fail:
            raise StoreError("%s: %s" % (self.path, fail))
        e = np.frombuffer(self._map, _ENTRY, n_images, index_off)
        n = e["n_boxes"].astype(np.int64)
        end = e["offset"].astype(np.int64) + n * (dim + 10) * 4  # (an offset past 2^63 fails off >= index_off)
        off = e["offset"]
        bad = ((n < 1) | (n > min(MAX_BOXES, max_boxes)) | (off % 64 != 0) | (off < data_off) | (off >= index_off) |
               (end > index_off) | (e["width"] < 1) | (e["width"] > MAX_SIDE) | (e["height"] < 1) |
               (e["height"] > MAX_SIDE) | (e["reserved"] != 0))
        bad[1:] |= e["image_id"][1:] <= e["image_id"][:-1]
        if bad.any():
            i = int(np.argmax(bad))
            raise StoreError("%s: index entry %d (offset %d, image %d) is invalid (unsorted id, box count, size or "
                             "record outside the data section)" % (self.path, i, index_off + 32 * i, e["image_id"][i]))
        if int(n.sum()) != n_boxes or (n_images and int(n.max()) != max_boxes):
            raise StoreError("%s: offset 24: the header's box total %d and maximum %d disagree with the index" % (
                self.path, n_boxes, max_boxes))
        self.feature_dim, self.max_boxes, self.entries = dim, max_boxes, e
        self.image_ids = e["image_id"]

    def __len__(self):
        return len(self.entries)

    def __repr__(self):
        return "<ban.store.FeatureStore %s: %d images, %d-d features>" % (self.path, len(self), self.feature_dim)

    def index_of(self, image_id):
        """The image's place in the index (sorted by id), or -1 when it is absent."""
        i = int(np.searchsorted(self.image_ids, image_id))
        return i if i < len(self.image_ids) and self.image_ids[i] == image_id else -1

    def record(self, i):
        """The Record of index entry i."""
        e = self.entries[i]
        n, D = int(e["n_boxes"]), self.feature_dim
        rec = np.frombuffer(self._map, "<f4", n * (D + 10), int(e["offset"]))
        return Record(int(e["image_id"]), n, int(e["width"]), int(e["height"]), int(e["offset"]),
                      rec[:n * D].reshape(n, D), rec[n * D:n * (D + 4)].reshape(n, 4), rec[n * (D + 4):].reshape(n, 6))

    def find(self, image_id):
        """The Record of an image id, or None when the store does not hold it."""
        i = self.index_of(image_id)
        return None if i < 0 else self.record(i)
