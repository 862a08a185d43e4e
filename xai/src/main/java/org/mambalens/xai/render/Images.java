package org.mambalens.xai.render;

import org.mambalens.engine.io.CheckpointException;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** PNG pictures of relevance maps and attention matrices. */
public final class Images {
    private Images() {
    }

    /**
     * A relevance map in [0, 1] over a grayscale image (0–255, [h, w]), both scaled up `scale` times:
     * the image in gray, the map blended on top in a blue→red colour ramp.
     */
    public static BufferedImage overlay(int[] gray, float[] relevance, int h, int w, int scale) {
        BufferedImage img = new BufferedImage(w * scale, h * scale, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h * scale; y++) {
            for (int x = 0; x < w * scale; x++) {
                int p = (y / scale) * w + x / scale;
                int[] heat = ramp(relevance[p]);
                int g = gray[p];
                img.setRGB(x, y, rgb((g + heat[0]) / 2, (g + heat[1]) / 2, (g + heat[2]) / 2));
            }
        }
        return img;
    }

    /** A grayscale image (0–255, [h, w]) scaled up. */
    public static BufferedImage gray(int[] gray, int h, int w, int scale) {
        BufferedImage img = new BufferedImage(w * scale, h * scale, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < h * scale; y++) for (int x = 0; x < w * scale; x++) {
            int g = gray[(y / scale) * w + x / scale];
            img.setRGB(x, y, rgb(g, g, g));
        }
        return img;
    }

    /** The top-left n × n block of a [size, size] matrix, min-max normalised, `scale` pixels per entry. */
    public static BufferedImage matrix(float[] m, int size, int n, int scale) {
        n = Math.min(n, size);
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) {
            min = Math.min(min, m[i * size + j]);
            max = Math.max(max, m[i * size + j]);
        }
        float range = max > min ? max - min : 1;
        BufferedImage img = new BufferedImage(n * scale, n * scale, BufferedImage.TYPE_INT_RGB);
        for (int y = 0; y < n * scale; y++) for (int x = 0; x < n * scale; x++) {
            int[] c = ramp((m[(y / scale) * size + x / scale] - min) / range);
            img.setRGB(x, y, rgb(c[0], c[1], c[2]));
        }
        return img;
    }

    /** A blue → cyan → yellow → red ramp over [0, 1]. */
    public static int[] ramp(float v) {
        v = Math.max(0, Math.min(1, Float.isNaN(v) ? 0 : v));
        float r = Math.min(1, Math.max(0, 1.5f - Math.abs(4 * v - 3)));
        float g = Math.min(1, Math.max(0, 1.5f - Math.abs(4 * v - 2)));
        float b = Math.min(1, Math.max(0, 1.5f - Math.abs(4 * v - 1)));
        return new int[]{Math.round(255 * r), Math.round(255 * g), Math.round(255 * b)};
    }

    private static int rgb(int r, int g, int b) {
        return (r << 16) | (g << 8) | b;
    }

    public static byte[] png(BufferedImage img) {
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ImageIO.write(img, "png", out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public static void write(BufferedImage img, Path file) {
        byte[] bytes = png(img);
        org.mambalens.engine.io.AtomicWrite.write(file, out -> out.write(bytes));
    }

    /** Text made safe inside HTML. */
    public static String escapeHtml(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }

    /** Raises a clear error when a directory cannot hold the outputs. */
    public static void ensureDirectory(Path dir) {
        try {
            java.nio.file.Files.createDirectories(dir);
        } catch (IOException e) {
            throw new CheckpointException(dir, "cannot create the output directory: " + e.getMessage());
        }
    }
}
