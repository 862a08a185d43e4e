package org.mambalens.xai.data;

import com.fasterxml.jackson.databind.JsonNode;
import org.mambalens.engine.io.CheckpointException;
import org.mambalens.engine.model.ImageClassifier;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A model's input preprocessing, from its {@code preprocessor_config.json} (transformers'
 * image-processor keys: do_resize, size, do_rescale, rescale_factor, do_normalize, image_mean,
 * image_std): resize to the model's size (bilinear, without PIL's antialiasing), scale to [0, 1],
 * normalise per channel. Grayscale models take the luma of colour images; colour models repeat a
 * gray image across channels. Without the file: rescale 1/255 and mean = std = 0.5 (transformers' ViT defaults).
 */
public record ImagePreprocessor(int channels, int size, float rescale, float[] mean, float[] std) {

    public static ImagePreprocessor of(Path modelDir, ImageClassifier model) {
        Path file = modelDir.resolve("preprocessor_config.json");
        int c = model.channels();
        float[] mean = filled(c, 0.5f), std = filled(c, 0.5f);
        float rescale = 1 / 255f;
        if (Files.isRegularFile(file)) {
            JsonNode j;
            try {
                j = new com.fasterxml.jackson.databind.ObjectMapper().readTree(file.toFile());
            } catch (IOException e) {
                throw new CheckpointException(file, "invalid JSON: " + e.getMessage().lines().findFirst().orElse(""));
            }
            if (j.path("do_rescale").asBoolean(true)) rescale = (float) j.path("rescale_factor").asDouble(1 / 255.0);
            else rescale = 1f;
            if (j.path("do_normalize").asBoolean(true)) {
                mean = perChannel(file, j.path("image_mean"), c, 0.5f);
                std = perChannel(file, j.path("image_std"), c, 0.5f);
            } else {
                mean = filled(c, 0f);
                std = filled(c, 1f);
            }
        }
        return new ImagePreprocessor(c, model.imageSize(), rescale, mean, std);
    }

    private static float[] filled(int n, float v) {
        float[] a = new float[n];
        java.util.Arrays.fill(a, v);
        return a;
    }

    private static float[] perChannel(Path file, JsonNode values, int channels, float fallback) {
        if (values.isMissingNode() || values.isNull()) return filled(channels, fallback);
        if (values.isNumber()) return filled(channels, (float) values.asDouble());
        if (!values.isArray() || (values.size() != channels && values.size() != 1)) {
            throw new CheckpointException(file, "image_mean/image_std must have 1 or " + channels + " values, got " + values);
        }
        float[] out = new float[channels];
        for (int c = 0; c < channels; c++) out[c] = (float) values.get(values.size() == 1 ? 0 : c).asDouble();
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
        BufferedImage img;
        try {
            img = Files.isRegularFile(file) ? ImageIO.read(file.toFile()) : null;
        } catch (IOException e) {
            throw new CheckpointException(file, "cannot read the image: " + e.getMessage());
        }
        if (img == null) throw new CheckpointException(file, Files.exists(file) ? "not an image (PNG, JPEG, BMP or GIF)" : "no such file");
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
