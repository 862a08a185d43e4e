package org.mambalens.xai.data;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Java rendering of placed Fashion-MNIST against the Python one that made the data and trained the models
 * (weights-tools/reference/fashion_placed.py). Needs Debian's dataset-fashion-mnist; skipped where absent.
 */
class PlacedFashionMnistTest {
    static final Path PLACEMENTS = Fixtures.repository().resolve(PlacedFashionMnist.BUNDLED_TEST);
    static PlacedFashionMnist test;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() {
        assumeTrue(FashionMnist.available(FashionMnist.DEBIAN),
                "Fashion-MNIST is not installed at " + FashionMnist.DEBIAN + ": apt-get install dataset-fashion-mnist");
        test = PlacedFashionMnist.test(PLACEMENTS, FashionMnist.DEBIAN);
    }

    @Test
    void scalingKeepsFlatImagesFlatAndTheNativeSizeUnchanged() {
        int[] flat = new int[28 * 28];
        Arrays.fill(flat, 200);
        for (int size = 20; size <= 44; size++) assertThat(PlacedFashionMnist.scaled(flat, size)).containsOnly(200);
        int[] ramp = new int[28 * 28];
        for (int p = 0; p < ramp.length; p++) ramp[p] = (p * 7) % 256;
        assertThat(PlacedFashionMnist.scaled(ramp, 28)).isEqualTo(ramp);
    }

    @Test
    void rendersEveryTestImageAsThePythonScriptDid() {
        // render() checks each image's pixel sum and object size against the file, which the Python script wrote.
        FashionMnist sources = FashionMnist.test(FashionMnist.DEBIAN);
        assertThat(test.size()).isEqualTo(10_000);
        assertThat(test.side()).isEqualTo(64);
        for (int i = 0; i < test.size(); i++) {
            PlacedFashionMnist.Rendered r = test.render(i);
            assertThat(test.label(i)).isEqualTo(sources.label(i));
            for (int p = 0; p < r.mask().length; p++) if (r.mask()[p]) assertThat(r.pixels()[p]).isPositive();
        }
    }

    @Test
    void clutterIsBackgroundAndTheObjectIsTheMask() throws IOException {
        PlacedFashionMnist.Rendered first = test.render(0);
        int bright = 0, clutter = 0;
        for (int p = 0; p < first.mask().length; p++) {
            if (first.pixels()[p] > 0) bright++;
            if (first.pixels()[p] > 0 && !first.mask()[p]) clutter++;
        }
        assertThat(clutter).isPositive().isLessThan(bright);
        // The bundled PNG of image 0 (written by the Python script) is the same picture.
        ImagePreprocessor.Decoded png = ImagePreprocessor.decode(Fixtures.repository().resolve("data/fashion-placed/test-0000-ankle-boot.png"));
        assertThat(png.luma()).isEqualTo(first.pixels());
    }

    @Test
    void aPlacementFileThatDisagreesWithTheRenderingIsRefused() throws IOException {
        List<String> lines = new ArrayList<>();
        try (var in = new GZIPInputStream(Files.newInputStream(PLACEMENTS))) {
            lines.addAll(new String(in.readAllBytes(), StandardCharsets.US_ASCII).lines().toList());
        }
        String[] row = lines.get(1).split(",");
        row[row.length - 2] = String.valueOf(Long.parseLong(row[row.length - 2]) + 1);   // pixel_sum off by one
        lines.set(1, String.join(",", row));
        Path bad = tmp.resolve("bad.csv.gz");
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(bad))) {
            out.write(String.join("\n", lines.subList(0, 3)).getBytes(StandardCharsets.US_ASCII));
        }
        PlacedFashionMnist tampered = PlacedFashionMnist.test(bad, FashionMnist.DEBIAN);
        assertThat(tampered.size()).isEqualTo(2);
        assertThat(tampered.pixels(1)).hasSize(64 * 64);
        assertThatThrownBy(() -> tampered.pixels(0)).hasMessageContaining("image 0 renders to pixel sum");
        lines.set(2, lines.get(2).replaceFirst("^1,2,20,24,", "1,2,60,24,"));             // an object larger than the canvas
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(bad))) {
            out.write(String.join("\n", lines.subList(0, 3)).getBytes(StandardCharsets.US_ASCII));
        }
        assertThatThrownBy(() -> PlacedFashionMnist.test(bad, FashionMnist.DEBIAN)).hasMessageContaining("does not fit the canvas");
    }

    @Test
    void preprocessingEqualsWhatTheBundledModelsWereTrainedOn() {
        for (String name : new String[]{"vim-placed", "vit-placed"}) {
            Path model = Fixtures.repository().resolve("models/" + name);
            Npy.Array reference = Npy.readFloat32(Fixtures.golden().resolve("trained/" + name + "/pixels.npy"));   // PyTorch's first images
            try (ImageClassifier classifier = Models.loadImageClassifier(model)) {
                ImagePreprocessor pre = ImagePreprocessor.of(model, classifier);
                int size = 64 * 64;
                for (int i = 0; i < reference.dim(0); i++) {
                    float[] mine = pre.fromGray(test.pixels(i), 64, 64);
                    assertThat(Fixtures.relativeError(mine, Arrays.copyOfRange(reference.data(), i * size, (i + 1) * size))).isLessThan(1e-6);
                }
            }
        }
    }
}
