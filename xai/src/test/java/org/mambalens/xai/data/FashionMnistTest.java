package org.mambalens.xai.data;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** Needs Debian's dataset-fashion-mnist (.ci/run installs it); skipped, with the reason shown, where absent. */
class FashionMnistTest {
    static FashionMnist test;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        assumeTrue(FashionMnist.available(FashionMnist.DEBIAN),
                "Fashion-MNIST is not installed at " + FashionMnist.DEBIAN + ": apt-get install dataset-fashion-mnist");
        test = FashionMnist.test(FashionMnist.DEBIAN);
    }

    @Test
    void readsTheTestSplit() {
        assertThat(test.size()).isEqualTo(10_000);
        assertThat(test.label(0)).isEqualTo(9);                 // the first test image is an ankle boot
        boolean[] mask = test.mask(0);
        int[] pixels = test.pixels(0);
        for (int p = 0; p < mask.length; p++) assertThat(mask[p]).isEqualTo(pixels[p] != 0);
    }

    @Test
    void preprocessingEqualsWhatTheModelsWereTrainedOn() throws Exception {
        Path model = Fixtures.repository().resolve("models/vim-fashion");
        Npy.Array reference = Npy.readFloat32(Fixtures.golden().resolve("trained/vim-fashion/pixels.npy"));   // PyTorch, first 16
        try (ImageClassifier classifier = Models.loadImageClassifier(model)) {
            ImagePreprocessor pre = ImagePreprocessor.of(model, classifier);
            int size = 28 * 28;
            for (int i = 0; i < 16; i++) {
                float[] mine = pre.fromGray(test.pixels(i), 28, 28);
                assertThat(Fixtures.relativeError(mine, Arrays.copyOfRange(reference.data(), i * size, (i + 1) * size))).isLessThan(1e-6);
            }
            // The same image through a PNG file.
            BufferedImage img = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
            int[] px = test.pixels(3);
            for (int p = 0; p < px.length; p++) img.getRaster().setSample(p % 28, p / 28, 0, px[p]);
            Path png = tmp.resolve("item.png");
            ImageIO.write(img, "png", png.toFile());
            assertThat(pre.fromFile(png)).containsExactly(pre.fromGray(px, 28, 28));
            Path notImage = tmp.resolve("fake.png");
            Files.writeString(notImage, "just text");
            assertThatThrownBy(() -> pre.fromFile(notImage)).isInstanceOf(CheckpointException.class).hasMessageContaining("fake.png: not an image");
            Path truncated = tmp.resolve("truncated.gif");
            Files.writeString(truncated, "GIF89a");
            assertThatThrownBy(() -> pre.fromFile(truncated)).isInstanceOf(CheckpointException.class).hasMessageContaining("truncated.gif: not a readable image");
        }
    }
}
