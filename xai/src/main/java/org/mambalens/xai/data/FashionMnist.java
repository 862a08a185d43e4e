package org.mambalens.xai.data;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fashion-MNIST as Debian's {@code dataset-fashion-mnist} installs it ({@code apt-get install
 * dataset-fashion-mnist}: /usr/share/datasets/fashion-mnist): 28×28 grayscale images, ten labels.
 * The foreground mask of an image (for the segmentation test) is its non-zero pixels.
 */
public final class FashionMnist implements ImageDataset {
    public static final Path DEBIAN = Path.of("/usr/share/datasets/fashion-mnist");
    public static final String[] LABELS = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    public static final int SIZE = 28;

    private final Idx.Array images;
    private final Idx.Array labels;

    private FashionMnist(Idx.Array images, Idx.Array labels) {
        if (images.count() != labels.count() || images.itemSize() != SIZE * SIZE) {
            throw new IllegalArgumentException("Fashion-MNIST images " + java.util.Arrays.toString(images.shape())
                    + " and labels " + java.util.Arrays.toString(labels.shape()) + " do not match");
        }
        this.images = images;
        this.labels = labels;
    }

    /** Whether the Debian package's files are present in this directory. */
    public static boolean available(Path dir) {
        return Files.isRegularFile(dir.resolve("t10k-images-idx3-ubyte.gz")) && Files.isRegularFile(dir.resolve("t10k-labels-idx1-ubyte.gz"));
    }

    /** The 10,000-image test split. */
    public static FashionMnist test(Path dir) {
        if (!available(dir)) throw new IllegalArgumentException("no Fashion-MNIST in " + dir + " (apt-get install dataset-fashion-mnist)");
        return new FashionMnist(Idx.read(dir.resolve("t10k-images-idx3-ubyte.gz")), Idx.read(dir.resolve("t10k-labels-idx1-ubyte.gz")));
    }

    @Override
    public String name() {
        return "fashion-mnist";
    }

    @Override
    public String title() {
        return "Fashion-MNIST";
    }

    @Override
    public String foreground() {
        return "the non-zero pixels";
    }

    @Override
    public int side() {
        return SIZE;
    }

    @Override
    public int size() {
        return images.count();
    }

    @Override
    public int label(int i) {
        return labels.get(i);
    }

    /** Raw pixels of image i, 0–255, row-major [28, 28]. */
    @Override
    public int[] pixels(int i) {
        int[] out = new int[SIZE * SIZE];
        for (int p = 0; p < out.length; p++) out[p] = images.get(i * SIZE * SIZE + p);
        return out;
    }

    /** The foreground: non-zero pixels. */
    @Override
    public boolean[] mask(int i) {
        boolean[] m = new boolean[SIZE * SIZE];
        for (int p = 0; p < m.length; p++) m[p] = images.get(i * SIZE * SIZE + p) != 0;
        return m;
    }
}
