package org.mambalens.cli.serve;

import org.mambalens.xai.data.ImagePreprocessor;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Base64;
import java.util.Iterator;

/**
 * An image sent to the API (PNG, JPEG, BMP or GIF, base64 in the JSON, or a data: URL as a browser reads a dropped
 * file), as 0–255 luma. Its size is read from the header before anything is decoded, so a small file that would
 * decode to a huge image is refused early. Each model gets the largest centred square, resized to its input size.
 */
record ImageInput(String label, int[] luma, int height, int width) {
    /** The largest side accepted. */
    static final int MAX_SIDE = 4096;

    static ImageInput fromBase64(String label, String base64) {
        String data = base64.startsWith("data:") ? base64.substring(base64.indexOf(',') + 1) : base64;
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(data.replaceAll("\\s", ""));
        } catch (IllegalArgumentException e) {
            throw new ApiException(ApiException.BAD_REQUEST, "\"image\" is not base64: " + e.getMessage());
        }
        return fromBytes(label, bytes);
    }

    static ImageInput fromBytes(String label, byte[] bytes) {
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(bytes))) {
            Iterator<ImageReader> readers = in == null ? java.util.Collections.emptyIterator() : ImageIO.getImageReaders(in);
            if (!readers.hasNext()) throw new ApiException(ApiException.BAD_REQUEST, label + ": not an image (PNG, JPEG, BMP or GIF)");
            ImageReader reader = readers.next();
            try {
                reader.setInput(in, true, true);
                int w = reader.getWidth(0), h = reader.getHeight(0);
                if (w > MAX_SIDE || h > MAX_SIDE) {
                    throw new ApiException(ApiException.TOO_LARGE, label + " is " + w + " × " + h + " px; the explorer takes at most " + MAX_SIDE + " px a side");
                }
                ImagePreprocessor.Decoded decoded = ImagePreprocessor.decode(reader.read(0));
                return new ImageInput(label, decoded.luma(), decoded.height(), decoded.width());
            } finally {
                reader.dispose();
            }
        } catch (IOException e) {
            throw new ApiException(ApiException.BAD_REQUEST, label + ": cannot read the image: " + e.getMessage());
        }
    }

    /** The largest centred square, resized (bilinear) to {@code size} × {@code size}, 0–255. */
    int[] square(int size) {
        int side = Math.min(height, width), top = (height - side) / 2, left = (width - side) / 2;
        float[] crop = new float[side * side];
        for (int y = 0; y < side; y++) for (int x = 0; x < side; x++) crop[y * side + x] = luma[(top + y) * width + left + x];
        float[] resized = ImagePreprocessor.bilinear(crop, side, side, size);
        int[] out = new int[size * size];
        for (int p = 0; p < out.length; p++) out[p] = Math.clamp(Math.round(resized[p]), 0, 255);
        return out;
    }
}
