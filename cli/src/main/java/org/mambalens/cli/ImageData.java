package org.mambalens.cli;

import org.mambalens.xai.data.FashionMnist;
import org.mambalens.xai.data.ImageDataset;
import org.mambalens.xai.data.PlacedFashionMnist;

import java.nio.file.Path;

/**
 * The labelled image sets that {@code evaluate} and {@code classify} read: placed Fashion-MNIST (64×64, the
 * bundled models' data; placements in data/fashion-placed) and Debian's Fashion-MNIST itself (28×28, the
 * older demo models'); both from the Fashion-MNIST files in one directory.
 */
final class ImageData {
    static final String PLACED = "placed", PLAIN = "fashion-mnist";
    static final String DEBIAN = "/usr/share/datasets/fashion-mnist";

    private ImageData() {
    }

    /** The set a model taking side×side images reads when none is named. */
    static String forSide(int side) {
        if (side == PlacedFashionMnist.SIDE) return PLACED;
        if (side == FashionMnist.SIZE) return PLAIN;
        throw new IllegalArgumentException("the model takes " + side + "×" + side + " images: no bundled test set has that size (placed Fashion-MNIST: "
                + PlacedFashionMnist.SIDE + ", Fashion-MNIST: " + FashionMnist.SIZE + ")");
    }

    /** The test split of the set {@code name} (placed or fashion-mnist), from the Fashion-MNIST files in {@code fashionMnist}. */
    static ImageDataset test(String name, Path fashionMnist, Path home) {
        return switch (name) {
            case PLACED -> PlacedFashionMnist.test(home.resolve(PlacedFashionMnist.BUNDLED_TEST), fashionMnist);
            case PLAIN -> FashionMnist.test(fashionMnist);
            default -> throw new IllegalArgumentException("--data: " + name + " is neither " + PLACED + " nor " + PLAIN);
        };
    }
}
