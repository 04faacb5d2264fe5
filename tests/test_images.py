"""Images in the examples (examples/image.h: load_image, as `ban ask` and `ban easyvqa-eval`
read them): dimensions and pixel counts capped before decoding, truncated files refused.

Each file is checked twice: through the fuzz target's replay driver (build/fuzz/replay_image
with FUZZ_IMAGE_REPORT set prints its verdict; the target itself asserts that stb_image has
allocated nothing when the header is refused, and that nothing decoded exceeds the caps),
and through `ban ask` with a tiny model that reads 8 x 8 images (the fuzz corpus's
vqa_encoder.ban), which must exit 1 with the message. The files are written here from the
PNG and BMP specifications (stored or zlib deflate), never by the code under test."""
import os
import struct
import zlib

import pytest

from conftest import ROOT, fuzz_report, run_ban, run_ban_capped

MODEL = os.path.join(ROOT, "tests", "fuzz", "corpus", "model", "vqa_encoder.ban")
CAPS = "(at most 8192 per side and 33554432 pixels)"


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png(w, h, rows=None):
    """A complete RGB PNG; rows: one raw row (without its filter byte) repeated, zeros by default.
    Compressed row by row, so that a large image costs little memory here."""
    row = b"\0" + (rows if rows is not None else bytes(3 * w))
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b""))


def png_with_data(w, h, data, depth=8, color_type=2, interlace=0):
    """A PNG of w x h pixels whose IDAT chunk is `data`, whatever it holds."""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace))
            + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))


def zeros_stream(n_mib):
    """A valid zlib stream of n_mib MiB of zeros, at deflate's best ratio (about 1,000 to 1), made in
    a few ms: one MiB's deflate blocks after a full flush do not refer back, so they repeat."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    n = n_mib << 20
    return b"\x78\xda" + segment * n_mib + c.flush(zlib.Z_FINISH) + struct.pack(">I", ((n % 65521) << 16) | 1)


def unended_stream(data):
    """data deflated, flushed, without the final block and checksum (a stream cut short)."""
    c = zlib.compressobj()
    return c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)


def bomb_1x1():
    """The issue's bomb: a 1 MB file of a 1 x 1 image whose data inflates to 1 GiB."""
    return png_with_data(1, 1, zeros_stream(1024))


def png_header(w, h):
    """Only the signature and an IHDR chunk announcing w x h."""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))


def bmp(w, h):
    row = (w * 3 + 3) // 4 * 4
    data = bytes(range(256)) * (row * h // 256 + 1)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, row * h, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + row * h, 0, 0, 54) + info + data[:row * h]


GOOD = png(8, 8, bytes(range(24)))


def seed(name):
    with open(os.path.join(ROOT, "tests", "fuzz", "corpus", "image", name), "rb") as f:
        return f.read()


def regression(name):
    with open(os.path.join(ROOT, "tests", "fuzz", "regressions", "image", name), "rb") as f:
        return f.read()

# name -> (the bytes, made when needed; the fuzz target's verdict; what ban ask says after "ban: error: PATH: ")
HOSTILE = {
    "truncated.png": (lambda: GOOD[:len(GOOD) // 2], "refused before decoding",
                      "cannot decode: truncated PNG (chunk 'IDAT' of "),
    # a whole PNG whose few bytes of data cannot hold the pixels its header announces
    "short_data_8000x4000.png": (lambda: png_header(8000, 4000) + png_chunk(b"IDAT", zlib.compress(bytes(100), 0))
                                 + png_chunk(b"IEND", b""), "refused before decoding", "cannot decode: PNG data of "
                                 "111 bytes cannot hold 8000 x 4000 pixels (96004000 bytes): truncated or corrupt"),
    # the fuzzer's finds: stb_image 2.27 would write past its Huffman tables, decode with a Huffman
    # table it never initialised, shift by 32 bits (JPEG: refused whole, see examples/image.h);
    # allocate 1 GB for a 78-byte PNG; and image.h read a PNG's IHDR fields before its length
    "good_but_jpeg.jpg": (lambda: seed("colour.jpg"), "refused before decoding", "a JPEG image: not accepted (stb_image 2.27's JPEG decoder misbehaves on corrupt data that no check before decoding can rule out); convert it to PNG"),
    "huffman_overflow.jpg": (lambda: regression("jpeg-huffman-table-of-659-codes.jpg"), "refused before decoding",
                             "a JPEG image: not accepted (stb_image 2.27's JPEG decoder misbehaves on corrupt data that no check before decoding can rule out); convert it to PNG"),
    "undefined_huffman_table.jpg": (lambda: regression("jpeg-scan-uses-undefined-huffman-table.jpg"),
                                    "refused before decoding", "a JPEG image: not accepted (stb_image 2.27's JPEG decoder misbehaves on corrupt data that no check before decoding can rule out); convert it to PNG"),
    "shift_by_32.jpg": (lambda: regression("jpeg-entropy-data-shifts-by-32.jpg"), "refused before decoding", "a JPEG image: not accepted (stb_image 2.27's JPEG decoder misbehaves on corrupt data that no check before decoding can rule out); convert it to PNG"),
    "chunk_claims_1_gb.png": (lambda: regression("png-idat-chunk-claims-1-gb.png"), "refused before decoding",
                              "cannot decode: truncated PNG (chunk 'IDAT' of 1140850709 bytes at byte 33 runs past "
                              "the end)"),
    "ihdr_cut_at_25_bytes.png": (lambda: regression("png-ihdr-cut-at-25-bytes.png"), "refused before decoding",
                                 "cannot decode: truncated PNG (25 bytes: no complete IHDR chunk)"),
    "header_0x0.png": (lambda: png_header(0, 0), "refused before decoding", "0 x 0 pixels: refused " + CAPS),
    "header_100000x100000.png": (lambda: png_header(100000, 100000), "refused before decoding",
                                 "100000 x 100000 pixels: refused " + CAPS),
    # complete images of their size, 150 and 108 MB of pixels: refused unread all the same
    "whole_10000x5000.png": (lambda: png(10000, 5000), "refused before decoding",
                             "10000 x 5000 pixels: refused " + CAPS),
    "whole_8000x4500.png": (lambda: png(8000, 4500), "refused before decoding",  # the sides fit, the pixels not
                            "8000 x 4500 pixels: refused " + CAPS),
    "not_an_image.png": (lambda: b"GIF89a\x01\x00\x01\x00" + bytes(40), "refused before decoding",
                         "not a PNG or BMP image"),
    # the data must inflate to exactly what the pixels need (here 3 rows of 1 + 4 x 3 bytes)
    "bomb_1x1_1gib.png": (bomb_1x1, "refused before decoding", "cannot decode: PNG data inflates to more than the "
                          "4 bytes its pixels need (a decompression bomb?)"),
    "one_byte_too_many.png": (lambda: png_with_data(4, 3, zlib.compress(bytes(40))), "refused before decoding",
                              "cannot decode: PNG data inflates to more than the 39 bytes its pixels need"),
    "one_byte_short.png": (lambda: png_with_data(4, 3, zlib.compress(bytes(38))), "refused before decoding",
                           "cannot decode: PNG data inflates to 38 of the 39 bytes its pixels need: truncated or "
                           "corrupt"),
    "stream_not_ended.png": (lambda: png_with_data(4, 3, unended_stream(bytes(39))), "refused before decoding",
                             "cannot decode: PNG data inflates to 39 of the 39 bytes its pixels need, and its deflate "
                             "stream does not end: truncated or corrupt"),
    "bad_checksum.png": (lambda: png_with_data(4, 3, zlib.compress(bytes(39))[:-1] + b"\x99"),
                         "refused before decoding", "cannot decode: corrupt PNG data (zlib: incorrect data check)"),
    # interlaced, the need is the 7 passes': 1 x 1 pixels, 8-bit grey -> one pass of one row (2 bytes)
    "interlaced_too_long.png": (lambda: png_with_data(1, 1, zlib.compress(bytes(3)), color_type=0, interlace=1),
                                "refused before decoding",
                                "cannot decode: PNG data inflates to more than the 2 bytes its pixels need"),
    "truncated.bmp": (lambda: bmp(7, 5)[:100], "refused before decoding",
                      "cannot decode: truncated BMP: 100 bytes, but its header announces 7 x 5 pixels in 171"),
}


def replay(path):
    """The fuzz target's verdict on one file (its first line of output)."""
    return fuzz_report("image", path, FUZZ_IMAGE_REPORT="1")[0]


def ask(path):
    return run_ban("ask", "--model", MODEL, "--image", path, "--question", "w0 w1", check=False)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_image_is_refused(tmp_path, name):
    make, verdict, message = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(make())
    got = replay(path)
    assert got.startswith("%s: img: %s" % (verdict, message)), got
    proc = ask(path)
    assert proc.returncode == 1 and proc.stdout == "", proc
    assert ("ban: error: %s: %s" % (path, message)) in proc.stderr, proc.stderr


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert replay(path) == "refused before decoding: img: 0 bytes: not an image of 1 byte to 64 MB"
    proc = ask(path)
    assert proc.returncode == 1
    assert "ban: error: %s: 0 bytes: not an image of 1 byte to 64 MB" % path in proc.stderr, proc.stderr


def test_good_images_are_read(tmp_path):
    """The same pipeline accepts what it should: a PNG at the model's size, a BMP to resize,
    a top-down BMP (negative height), which earlier versions refused as "7 x -5 pixels", and
    interlaced PNGs (their data is the 7 passes' rows)."""
    top_down = bytearray(bmp(7, 5))
    struct.pack_into("<i", top_down, 22, -5)
    for name, data, size in (("good.png", GOOD, "8 x 8"), ("good.bmp", bmp(7, 5), "7 x 5"),
                             ("top_down.bmp", bytes(top_down), "7 x 5"),
                             ("interlaced.png", seed("interlaced_5x9.png"), "5 x 9"),
                             ("interlaced_1x1_grey.png", png_with_data(1, 1, zlib.compress(bytes(2)), color_type=0,
                                                                        interlace=1), "1 x 1")):
        path = tmp_path / name
        path.write_bytes(data)
        assert replay(path) == "decoded %s" % size
        proc = ask(path)
        assert proc.returncode == 0 and proc.stdout.startswith("answer: "), proc.stderr



def test_a_decompression_bomb_costs_no_memory(tmp_path):
    """The 1 MB PNG of 1 x 1 pixels whose data inflates to 1 GiB: refused within 256 MB of address
    space (the model and OpenBLAS included), after inflating no more than its 4 bytes and a 16 KB
    buffer. stb_image alone decoded it in full before (1 GB)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_1x1())
    assert 1000000 < path.stat().st_size < 1100000
    proc = run_ban_capped(256, "ask", "--model", MODEL, "--image", path, "--question", "w0 w1")
    assert proc.returncode == 1 and "(a decompression bomb?)" in proc.stderr, proc.stderr


def test_what_is_not_a_regular_file_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)  # nobody writes to it: opening it must not wait for a writer
    proc = run_ban("ask", "--model", MODEL, "--image", fifo, "--question", "w0 w1", check=False, timeout=60)
    assert proc.returncode == 1 and "ban: error: %s: not a regular file" % fifo in proc.stderr
    proc = run_ban("ask", "--model", MODEL, "--image", "/dev/zero", "--question", "w0 w1", check=False, timeout=60)
    assert proc.returncode == 1 and "ban: error: /dev/zero: not a regular file" in proc.stderr
