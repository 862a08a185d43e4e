package org.mambalens.cli;

import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
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

    /** Where the placed set's test placements are (the bundled file), or null for plain Fashion-MNIST, for the set {@code name}. */
    static Path placements(String name, Path home) {
        return switch (name) {
            case PLACED -> home.resolve(PlacedFashionMnist.BUNDLED_TEST);
            case PLAIN -> null;
            default -> throw new IllegalArgumentException("--data: " + name + " is neither " + PLACED + " nor " + PLAIN);
        };
    }

    /** The test split: placed Fashion-MNIST from {@code placements} (null: Fashion-MNIST itself), from the Fashion-MNIST files in {@code fashionMnist}. */
    static ImageDataset test(Path fashionMnist, Path placements) {
        return placements == null ? FashionMnist.test(fashionMnist) : PlacedFashionMnist.test(placements, fashionMnist);
    }

    /** The side of the images an image classifier takes (its checkpoint opened and closed again). */
    static int imageSize(Path model) {
        try (ImageClassifier classifier = Models.loadImageClassifier(model)) {
            return classifier.imageSize();
        }
    }
}
