package org.mambalens.xai.data;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.io.ConfigFile;
import org.mambalens.engine.io.InputFile;
import org.mambalens.engine.io.MemoryBudget;
import org.mambalens.engine.model.ImageClassifier;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A model's input preprocessing, from its {@code preprocessor_config.json} (transformers'
 * image-processor keys: do_resize, size, do_rescale, rescale_factor, do_normalize, image_mean,
 * image_std): resize to the model's size (bilinear, without PIL's antialiasing), scale to [0, 1],
 * normalise per channel. Grayscale models take the luma of colour images; colour models repeat a
 * gray image across channels. Without the file: rescale 1/255 and mean = std = 0.5 (transformers' ViT defaults).
 */
public record ImagePreprocessor(int channels, int size, float rescale, float[] mean, float[] std) {

    private static final Set<Path> NOTED = ConcurrentHashMap.newKeySet();

    public static ImagePreprocessor of(Path modelDir, ImageClassifier model) {
        Path file = modelDir.resolve("preprocessor_config.json");
        int c = model.channels();
        if (!Files.isRegularFile(file)) {
            if (NOTED.add(modelDir.toAbsolutePath().normalize())) {
                System.err.println("mambalens: " + modelDir + " has no preprocessor_config.json; images are scaled by 1/255 and normalised "
                        + "with mean = std = 0.5 (transformers' defaults)");
            }
            return new ImagePreprocessor(c, model.imageSize(), 1 / 255f, filled(c, 0.5f), filled(c, 0.5f));
        }
        ConfigFile config = ConfigFile.of(file);
        float rescale = config.bool("do_rescale", true) ? (float) config.positiveNumber("rescale_factor", 1 / 255.0) : 1f;
        if (!config.bool("do_normalize", true)) return new ImagePreprocessor(c, model.imageSize(), rescale, filled(c, 0f), filled(c, 1f));
        float[] mean = perChannel(config, "image_mean", c), std = perChannel(config, "image_std", c);
        for (float s : std) if (!(s > 0)) throw config.error("\"image_std\" must be positive, got " + config.json().get("image_std"));
        return new ImagePreprocessor(c, model.imageSize(), rescale, mean, std);
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    /** image_mean or image_std: one number, or 1 or {@code channels} of them; 0.5 each when absent. */
    private static float[] perChannel(ConfigFile config, String key, int channels) {
        JsonNode values = config.json().path(key);
        if (values.isMissingNode() || values.isNull()) return filled(channels, 0.5f);
        if (values.isNumber()) values = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.arrayNode().add(values);
        if (!values.isArray() || (values.size() != channels && values.size() != 1)) {
            throw config.error("\"" + key + "\" must be a number or a list of 1 or " + channels + " numbers, got " + values);
        }
        float[] out = new float[channels];
        for (int c = 0; c < channels; c++) {
            JsonNode v = values.get(values.size() == 1 ? 0 : c);
            if (!v.isNumber() || !Float.isFinite((float) v.asDouble())) throw config.error("\"" + key + "\" must hold finite numbers, got " + values);
            out[c] = (float) v.asDouble();
        }
        return out;
    }

    /** A grayscale image, values 0–255, row-major [h, w] → pixels [C, size, size]. */
    public float[] fromGray(int[] gray, int h, int w) {
        float[] plane = resize(gray, h, w);
        float[] out = new float[channels * size * size];
        for (int c = 0; c < channels; c++) {
            for (int p = 0; p < plane.length; p++) out[c * plane.length + p] = (plane[p] * rescale - mean[c]) / std[c];
        }
        return out;
    }

    /** The decoded image (4 bytes a pixel at most) and its three int planes. */
    private static final long BYTES_PER_DECODED_PIXEL = 4 + 3 * Integer.BYTES;

    /** A decoded image: 0–255 red, green and blue planes [h·w] (one shared plane for a gray image). */
    public record Decoded(int[][] rgb, int height, int width) {
        /** ITU-R 601 luma, as PIL's convert("L"); the plane itself for a gray image. */
        public int[] luma() {
            if (rgb[0] == rgb[1] && rgb[1] == rgb[2]) return rgb[0];
            int[] out = new int[height * width];
            for (int p = 0; p < out.length; p++) out[p] = (rgb[0][p] * 299 + rgb[1][p] * 587 + rgb[2][p] * 114 + 500) / 1000;
            return out;
        }
    }

    /** Decodes a PNG, JPEG, BMP or GIF file; a clear error naming the file otherwise. */
    public static Decoded decode(Path file) {
        InputFile.regular(file);
        BufferedImage img;
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            Iterator<ImageReader> readers = in == null ? java.util.Collections.emptyIterator() : ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new CheckpointException(file, "not an image (PNG, JPEG, BMP or GIF)");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                // The header's size, checked before the pixels are decoded: a small file may claim a huge image.
                long pixels = MemoryBudget.product(reader.getWidth(0), reader.getHeight(0));
                MemoryBudget.require(MemoryBudget.product(pixels, BYTES_PER_DECODED_PIXEL), file,
                        "the image (" + reader.getWidth(0) + " × " + reader.getHeight(0) + " pixels)");
                img = reader.read(0);
            } finally {
                reader.dispose();
            }
        } catch (CheckpointException refused) {
            throw refused;
        } catch (IOException | RuntimeException e) {
            // ImageIO's decoders report corrupt data with whatever exception they meet first.
            throw new CheckpointException(file, "not a readable image (PNG, JPEG, BMP or GIF): " + (e.getMessage() == null ? "corrupt data" : e.getMessage()));
        }
        return decode(img);
    }

    /** The planes of an image already read (the explorer reads uploads from memory). */
    public static Decoded decode(BufferedImage img) {
        int h = img.getHeight(), w = img.getWidth();
        if (img.getColorModel().getNumComponents() == 1) {
            // Gray images: the stored samples (getRGB would pass them through Java's linear-gray colour space).
            int shift = Math.max(0, img.getColorModel().getComponentSize(0) - 8);
            int[] gray = new int[h * w];
            for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) gray[y * w + x] = img.getRaster().getSample(x, y, 0) >> shift;
            return new Decoded(new int[][]{gray, gray, gray}, h, w);
        }
        int[][] rgb = new int[3][h * w];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int p = img.getRGB(x, y);
                rgb[0][y * w + x] = (p >> 16) & 0xFF;
                rgb[1][y * w + x] = (p >> 8) & 0xFF;
                rgb[2][y * w + x] = p & 0xFF;
            }
        }
        return new Decoded(rgb, h, w);
    }

    /** An image file → pixels [C, size, size]: luma for a grayscale model, the colour planes otherwise. */
    public float[] fromFile(Path file) {
        Decoded img = decode(file);
        int[] luma = channels == 1 ? img.luma() : null;
        float[] out = new float[channels * size * size];
        for (int c = 0; c < channels; c++) {
            float[] plane = resize(channels == 1 ? luma : img.rgb()[Math.min(c, 2)], img.height(), img.width());
            for (int p = 0; p < plane.length; p++) out[c * plane.length + p] = (plane[p] * rescale - mean[c]) / std[c];
        }
        return out;
    }

    private float[] resize(int[] src, int h, int w) {
        float[] f = new float[src.length];
        for (int p = 0; p < f.length; p++) f[p] = src[p];
        return bilinear(f, h, w, size);
    }

    /** Bilinear resize of [h, w] to [size, size] with half-pixel centres and clamped edges (the identity at the same size). */
    public static float[] bilinear(float[] src, int h, int w, int size) {
        if (h == size && w == size) return src.clone();
        float[] out = new float[size * size];
        for (int y = 0; y < size; y++) {
            float sy = Math.max(0, Math.min(h - 1, (y + 0.5f) * h / size - 0.5f));
            int y0 = (int) sy, y1 = Math.min(h - 1, y0 + 1);
            float fy = sy - y0;
            for (int x = 0; x < size; x++) {
                float sx = Math.max(0, Math.min(w - 1, (x + 0.5f) * w / size - 0.5f));
                int x0 = (int) sx, x1 = Math.min(w - 1, x0 + 1);
                float fx = sx - x0;
                float top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
                float bottom = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
                out[y * size + x] = top * (1 - fy) + bottom * fy;
            }
        }
        return out;
    }
}
