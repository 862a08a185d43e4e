package org.mambalens.xai.data;

/**
 * A labelled test set of square grayscale images with a foreground mask per image, as the faithfulness
 * evaluation and {@code classify} read it: Debian's Fashion-MNIST ({@link FashionMnist}) or the placed
 * Fashion-MNIST built from it ({@link PlacedFashionMnist}).
 */
public interface ImageDataset {
    /** A short name for reports and journals, e.g. "fashion-mnist". */
    String name();

    /** What it is, for reports, e.g. "Fashion-MNIST". */
    String title();

    /** Which pixels {@link #mask} calls foreground, for reports. */
    String foreground();

    /** The images' side in pixels. */
    int side();

    int size();

    int label(int i);

    /** Raw pixels of image i, 0–255, row-major [side, side]. */
    int[] pixels(int i);

    /** The pixels that belong to the object, row-major [side, side]. */
    boolean[] mask(int i);
}
