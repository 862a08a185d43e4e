package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.Buffer;
import org.mambalens.engine.tensor.Matrices;

/** What every image classifier's forward pass does around its layers: the pixels up, the logits back. */
public final class ImageBatch {
    private ImageBatch() {
    }

    /** A forward pass over B images already on the backend: pixels [B, C, S, S] in, logits [B, K] out. */
    @FunctionalInterface
    public interface Pass {
        void run(Backend.Frame frame, Buffer pixels, int batch, Buffer logits);
    }

    /** Checks each image is [C, S, S], writes them to a frame, runs {@code pass} and reads the logits [B][K]. */
    public static float[][] classify(Backend backend, float[][] images, int channels, int size, int classes, Pass pass) {
        int B = images.length, K = classes;
        for (float[] image : images) ImageClassifier.checkPixels(image, channels, size);
        return backend.call(() -> {
            try (Backend.Frame f = backend.frame()) {
                Buffer pixels = f.floats((long) B * channels * size * size), logits = f.floats((long) B * K);
                backend.write(pixels, images);
                pass.run(f, pixels, B, logits);
                return Matrices.rows(backend.read(logits, B * K), B, K);
            }
        });
    }
}
