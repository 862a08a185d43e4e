#!/usr/bin/env python3
"""Placed Fashion-MNIST: an image benchmark where position carries no information (issue 21).

Each Fashion-MNIST image is scaled to a random size and put at a random place on a 64x64 black canvas,
beside three 8x8 fragments cut from other images of the same split (clutter, never overlapping the
object's box). The foreground mask is the placed object's own non-zero pixels; the clutter is
background. Everything is integer arithmetic, so the Java reader (xai's PlacedFashionMnist) renders
the very same bytes from the placements:

  size  = 20 + draw(25)                       object side, 20..44 pixels (Fashion-MNIST's is 28)
  x, y  = draw(65 - size), draw(65 - size)    its top-left corner
  per fragment: source = draw(N) (the next image if that is the object's own), its crop's corner
  cx, cy = 6 + draw(9) each (inside the central 22x22), then dx, dy = draw(57) each, drawn again while
  the 8x8 square overlaps the object's box (after 50 tries the fragment is left out: dx = dy = -1)

where draw(n) = int(rng.random() * n) and rng = random.Random(seed): Python guarantees random()'s
sequence for a seed across versions. Scaling is bilinear with pixel centres aligned and weights in
1/256ths (see scale_taps). The object is drawn over the fragments with max().

Splits: test = the 10,000 t10k images in order, seed 1; train = the 60,000 training images in order,
seed 0 (fresh draws for augmentation use seeds 100, 101, ...). Image i of a split is source image i,
with its label.

  python3 fashion_placed.py --fashion /usr/share/datasets/fashion-mnist --out data/fashion-placed

writes OUT/test-placements.csv.gz (what the Java reader needs beside Debian's Fashion-MNIST; with a
checksum per image), OUT/test-NNNN-<class>.png (the first image of each class, for `explain`), and
prints the train split's pixel mean and std (the models' normalisation).
"""
import argparse, gzip, os, random, struct, zlib
import numpy as np

CANVAS = 28 + 36
SOURCE = 28
MIN_SIZE, SIZES = 20, 25
FRAGMENTS, FRAGMENT = 3, 8
CROP_FROM, CROP_SPAN = 6, 9
TRIES = 50
TEST_SEED, TRAIN_SEED = 1, 0
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
COLUMNS = ["index", "label", "size", "x", "y"] + [f"f{k}_{c}" for k in range(FRAGMENTS) for c in ("source", "cx", "cy", "dx", "dy")] \
          + ["pixel_sum", "mask_pixels"]


def idx(path):
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def placements(n, seed):
    """[n, 4 + 5 * FRAGMENTS] int32: index (= source), size, x, y, then per fragment source, cx, cy, dx, dy."""
    rng = random.Random(seed)

    def draw(k):
        return int(rng.random() * k)

    rows = np.zeros((n, 4 + 5 * FRAGMENTS), np.int32)
    for i in range(n):
        size = MIN_SIZE + draw(SIZES)
        x, y = draw(CANVAS - size + 1), draw(CANVAS - size + 1)
        row = [i, size, x, y]
        for _ in range(FRAGMENTS):
            source = draw(n)
            if source == i:
                source = (i + 1) % n
            cx, cy = CROP_FROM + draw(CROP_SPAN), CROP_FROM + draw(CROP_SPAN)
            dx = dy = -1
            for _ in range(TRIES):
                px, py = draw(CANVAS - FRAGMENT + 1), draw(CANVAS - FRAGMENT + 1)
                if px + FRAGMENT <= x or px >= x + size or py + FRAGMENT <= y or py >= y + size:
                    dx, dy = px, py
                    break
            row += [source, cx, cy, dx, dy]
        rows[i] = row
    return rows


def scale_taps(size):
    """For each output index of a SOURCE -> size scaling: the two source indices and the second's weight
    in 1/256ths. Source coordinate (o + 0.5) * SOURCE / size - 0.5, floored to 1/256."""
    o = np.arange(size, dtype=np.int32)
    c = ((2 * o + 1) * SOURCE - size) * 128 // size          # floor division, also below zero
    lo, w = c >> 8, c & 255
    return np.clip(lo, 0, SOURCE - 1), np.clip(lo + 1, 0, SOURCE - 1), w


def scaled(images, size):
    """uint8 [n, 28, 28] -> uint8 [n, size, size], bilinear in integers, rounded half up."""
    y0, y1, wy = scale_taps(size)
    x0, x1, wx = scale_taps(size)
    im = images.astype(np.int32)                                 # at most 255 * 65536: fits
    rows0, rows1 = im[:, y0], im[:, y1]                          # [n, size, 28]
    top = rows0[:, :, x0] * (256 - wx) + rows0[:, :, x1] * wx    # [n, size, size], in 1/256ths
    bottom = rows1[:, :, x0] * (256 - wx) + rows1[:, :, x1] * wx
    value = top * (256 - wy)[:, None] + bottom * wy[:, None]     # in 1/65536ths
    return ((value + 32768) >> 16).astype(np.uint8)


def render(images, rows):
    """The canvases uint8 [n, 64, 64] and the objects' masks bool [n, 64, 64] of placement rows over source images."""
    n = rows.shape[0]
    canvas = np.zeros((n, CANVAS, CANVAS), np.uint8)
    mask = np.zeros((n, CANVAS, CANVAS), bool)
    for i, r in enumerate(rows.tolist()):
        for k in range(FRAGMENTS):
            source, cx, cy, dx, dy = r[4 + 5 * k:9 + 5 * k]
            if dx >= 0:
                region = canvas[i, dy:dy + FRAGMENT, dx:dx + FRAGMENT]
                np.maximum(region, images[source, cy:cy + FRAGMENT, cx:cx + FRAGMENT], out=region)
    for size in np.unique(rows[:, 1]):
        which = np.nonzero(rows[:, 1] == size)[0]
        objects = scaled(images[rows[which, 0]], int(size))
        for j, (i, x, y) in enumerate(zip(which.tolist(), rows[which, 2].tolist(), rows[which, 3].tolist())):
            region = canvas[i, y:y + size, x:x + size]
            np.maximum(region, objects[j], out=region)
            mask[i, y:y + size, x:x + size] = objects[j] > 0
    return canvas, mask


def split(fashion, name, seed=None):
    """(canvases, masks, labels, rows) of the train or test split (another seed: fresh draws of the same images)."""
    prefix = "t10k" if name == "test" else "train"
    images = idx(os.path.join(fashion, f"{prefix}-images-idx3-ubyte.gz"))
    labels = idx(os.path.join(fashion, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    rows = placements(images.shape[0], seed if seed is not None else (TEST_SEED if name == "test" else TRAIN_SEED))
    canvas, mask = render(images, rows)
    return canvas, mask, labels, rows


def png(path, gray):
    """An 8-bit grayscale PNG, written with zlib alone."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def slug(label):
    return label.lower().replace("/top", "").replace(" ", "-")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fashion", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default="data/fashion-placed")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    canvas, mask, labels, rows = split(a.fashion, "test")
    sums = canvas.reshape(len(rows), -1).sum(1, dtype=np.int64)
    counts = mask.reshape(len(rows), -1).sum(1)
    with gzip.GzipFile(os.path.join(a.out, "test-placements.csv.gz"), "wb", mtime=0) as f:
        f.write((",".join(COLUMNS) + "\n").encode())
        for i, r in enumerate(rows):
            f.write((",".join(str(int(v)) for v in [r[0], labels[i], *r[1:], sums[i], counts[i]]) + "\n").encode())
    seen = set()
    for i in range(len(rows)):
        if labels[i] not in seen:
            seen.add(labels[i])
            png(os.path.join(a.out, f"test-{i:04d}-{slug(LABELS[labels[i]])}.png"), canvas[i])
    train, _, _, _ = split(a.fashion, "train")
    pixels = train.astype(np.float64) / 255
    print(f"test: {len(rows)} images, object {counts.mean():.0f} pixels on average; fragments left out: {(rows[:, 7::5] < 0).sum()}")
    print(f"train: {train.shape[0]} images, pixel mean {pixels.mean():.4f}, std {pixels.std():.4f}")


if __name__ == "__main__":
    main()
