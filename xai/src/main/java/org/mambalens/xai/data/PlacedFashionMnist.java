package org.mambalens.xai.data;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;

/**
 * Placed Fashion-MNIST (issue 21): each Fashion-MNIST test image scaled to a random side of 20–44 pixels and
 * put at a random place on a 64×64 black canvas, beside three 8×8 fragments cut from other test images
 * (clutter, never overlapping the object's square). Position carries no information about the class. The
 * foreground mask is the placed object's own non-zero pixels; the clutter is background.
 *
 * <p>The placements come from {@code data/fashion-placed/test-placements.csv.gz}, written with a fixed seed
 * by {@code weights-tools/reference/fashion_placed.py}; the images are rendered here from Debian's
 * Fashion-MNIST by the same integer arithmetic (bilinear scaling with weights in 1/256ths, the object drawn
 * over the fragments with max), so they are byte for byte the images the bundled models were tested on.
 * Each rendering is checked against the file's pixel sum and mask size for that image.
 */
public final class PlacedFashionMnist implements ImageDataset {
    public static final String BUNDLED_TEST = "data/fashion-placed/test-placements.csv.gz";
    public static final int SIDE = 64;
    static final int FRAGMENTS = 3, FRAGMENT = 8;

    record Fragment(int source, int cx, int cy, int dx, int dy) {
    }

    /** Image i of the split: its source image, label, the object's side and corner, the clutter, and the checksums. */
    record Placement(int source, int label, int size, int x, int y, Fragment[] fragments, long pixelSum, int maskPixels) {
    }

    /** A rendered image: pixels 0–255 and the object's mask, both [64, 64] row-major. */
    record Rendered(int[] pixels, boolean[] mask) {
    }

    private final FashionMnist sources;
    private final List<Placement> placements;

    private PlacedFashionMnist(FashionMnist sources, List<Placement> placements) {
        this.sources = sources;
        this.placements = placements;
    }

    /** The test split: placements from {@code file} over Fashion-MNIST's test images in {@code fashionMnist}. */
    public static PlacedFashionMnist test(Path file, Path fashionMnist) {
        FashionMnist sources = FashionMnist.test(fashionMnist);
        List<Placement> rows = read(file);
        for (int i = 0; i < rows.size(); i++) {
            Placement p = rows.get(i);
            boolean fragmentsKnown = Arrays.stream(p.fragments()).allMatch(f -> f.source() < sources.size());
            if (p.source() >= sources.size() || !fragmentsKnown || p.label() != sources.label(p.source())) {
                throw new IllegalArgumentException(file + ": image " + i + " names source " + p.source() + " with label " + p.label()
                        + " (or a fragment source) that " + fashionMnist + " does not have");
            }
        }
        return new PlacedFashionMnist(sources, rows);
    }

    static List<Placement> read(Path file) {
        List<Placement> rows = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(new GZIPInputStream(Files.newInputStream(file)), StandardCharsets.US_ASCII))) {
            List<String> header = Arrays.asList(in.readLine().split(","));
            int[] col = columns(file, header, "index", "label", "size", "x", "y", "pixel_sum", "mask_pixels");
            int[] fragmentCols = new int[FRAGMENTS * 5];
            for (int k = 0; k < FRAGMENTS; k++) {
                int[] c = columns(file, header, "f" + k + "_source", "f" + k + "_cx", "f" + k + "_cy", "f" + k + "_dx", "f" + k + "_dy");
                System.arraycopy(c, 0, fragmentCols, 5 * k, 5);
            }
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank()) continue;
                long[] v = Arrays.stream(line.split(",")).mapToLong(Long::parseLong).toArray();
                if (v.length != header.size()) throw new IllegalArgumentException(file + ": line " + (rows.size() + 2) + " has " + v.length + " fields");
                Fragment[] fragments = new Fragment[FRAGMENTS];
                for (int k = 0; k < FRAGMENTS; k++) {
                    int o = 5 * k;
                    fragments[k] = new Fragment((int) v[fragmentCols[o]], (int) v[fragmentCols[o + 1]], (int) v[fragmentCols[o + 2]],
                            (int) v[fragmentCols[o + 3]], (int) v[fragmentCols[o + 4]]);
                }
                rows.add(check(file, rows.size(), new Placement((int) v[col[0]], (int) v[col[1]], (int) v[col[2]], (int) v[col[3]], (int) v[col[4]],
                        fragments, v[col[5]], (int) v[col[6]])));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot read the placements (" + e.getMessage() + ")", e);
        } catch (NumberFormatException | NullPointerException e) {
            throw new IllegalArgumentException(file + ": not a placements file (" + e.getMessage() + ")");
        }
        if (rows.isEmpty()) throw new IllegalArgumentException(file + ": no placements");
        return List.copyOf(rows);
    }

    private static int[] columns(Path file, List<String> header, String... names) {
        int[] out = new int[names.length];
        for (int k = 0; k < names.length; k++) {
            out[k] = header.indexOf(names[k]);
            if (out[k] < 0) throw new IllegalArgumentException(file + ": no column " + names[k]);
        }
        return out;
    }

    /** Refuses a placement that would draw outside the canvas or read outside its source. */
    private static Placement check(Path file, int i, Placement p) {
        boolean ok = p.size() > 0 && p.x() >= 0 && p.y() >= 0 && p.x() + p.size() <= SIDE && p.y() + p.size() <= SIDE && p.source() >= 0;
        for (Fragment f : p.fragments()) {
            ok &= f.source() >= 0 && f.cx() >= 0 && f.cy() >= 0 && f.cx() + FRAGMENT <= FashionMnist.SIZE && f.cy() + FRAGMENT <= FashionMnist.SIZE
                    && (f.dx() == -1 && f.dy() == -1 || f.dx() >= 0 && f.dy() >= 0 && f.dx() + FRAGMENT <= SIDE && f.dy() + FRAGMENT <= SIDE);
        }
        if (!ok) throw new IllegalArgumentException(file + ": placement of image " + i + " does not fit the canvas or its source");
        return p;
    }

    @Override
    public String name() {
        return "fashion-placed";
    }

    @Override
    public String title() {
        return "placed Fashion-MNIST (64×64)";
    }

    @Override
    public String foreground() {
        return "the placed object's non-zero pixels (the clutter is background)";
    }

    @Override
    public int side() {
        return SIDE;
    }

    @Override
    public int size() {
        return placements.size();
    }

    @Override
    public int label(int i) {
        return placements.get(i).label();
    }

    @Override
    public int[] pixels(int i) {
        return render(i).pixels();
    }

    @Override
    public boolean[] mask(int i) {
        return render(i).mask();
    }

    Rendered render(int i) {
        Placement p = placements.get(i);
        int[] canvas = new int[SIDE * SIDE];
        boolean[] mask = new boolean[SIDE * SIDE];
        for (Fragment f : p.fragments()) {
            if (f.dx() < 0) continue;
            int[] src = sources.pixels(f.source());
            for (int r = 0; r < FRAGMENT; r++) {
                for (int c = 0; c < FRAGMENT; c++) {
                    int at = (f.dy() + r) * SIDE + f.dx() + c;
                    canvas[at] = Math.max(canvas[at], src[(f.cy() + r) * FashionMnist.SIZE + f.cx() + c]);
                }
            }
        }
        int[] object = scaled(sources.pixels(p.source()), p.size());
        long sum = 0;
        int inMask = 0;
        for (int r = 0; r < p.size(); r++) {
            for (int c = 0; c < p.size(); c++) {
                int at = (p.y() + r) * SIDE + p.x() + c, v = object[r * p.size() + c];
                canvas[at] = Math.max(canvas[at], v);
                mask[at] = v > 0;
            }
        }
        for (int at = 0; at < canvas.length; at++) {
            sum += canvas[at];
            if (mask[at]) inMask++;
        }
        if (sum != p.pixelSum() || inMask != p.maskPixels()) {
            throw new IllegalStateException("placed Fashion-MNIST image " + i + " renders to pixel sum " + sum + " and " + inMask
                    + " object pixels; the placements file says " + p.pixelSum() + " and " + p.maskPixels());
        }
        return new Rendered(canvas, mask);
    }

    /** A 28×28 image scaled to size×size: bilinear, pixel centres aligned, weights in 1/256ths, rounded half up. */
    static int[] scaled(int[] image, int size) {
        int n = FashionMnist.SIZE;
        int[] lo = new int[size], hi = new int[size], w = new int[size];
        for (int o = 0; o < size; o++) {
            int c = Math.floorDiv(((2 * o + 1) * n - size) * 128, size);
            lo[o] = Math.clamp(c >> 8, 0, n - 1);
            hi[o] = Math.clamp((c >> 8) + 1, 0, n - 1);
            w[o] = c & 255;
        }
        int[] out = new int[size * size];
        for (int r = 0; r < size; r++) {
            for (int c = 0; c < size; c++) {
                int top = image[lo[r] * n + lo[c]] * (256 - w[c]) + image[lo[r] * n + hi[c]] * w[c];
                int bottom = image[hi[r] * n + lo[c]] * (256 - w[c]) + image[hi[r] * n + hi[c]] * w[c];
                out[r * size + c] = (top * (256 - w[r]) + bottom * w[r] + 32768) >> 16;
            }
        }
        return out;
    }
}
