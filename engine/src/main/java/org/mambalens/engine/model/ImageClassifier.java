package org.mambalens.engine.model;

import org.mambalens.engine.backend.Backend;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.trace.TraceRecorder;

/** An image classifier over preprocessed pixels. */
public interface ImageClassifier extends AutoCloseable {
    int numClasses();

    int channels();

    int imageSize();

    /** The token whose output the head reads: the cls token's position in the sequence. */
    int clsPosition();

    /** Blocks (Mamba layers or Transformer layers). */
    int layers();

    /** Where this model computes. */
    default Backend backend() {
        return CpuBackend.INSTANCE;
    }

    /** Whether this model runs on a GPU (its explanations then sum their attention maps there too). */
    default boolean onGpu() {
        return backend().isGpu();
    }

    /** Logits [classes] for one image, pixels [C, H, W] already preprocessed; optionally traced. */
    float[] classify(float[] pixels, TraceRecorder trace);

    /** Logits [images][classes] for several images (each [C, H, W]); the GPU models run them as one batch. */
    default float[][] classifyBatch(float[][] images) {
        float[][] logits = new float[images.length][];
        for (int i = 0; i < images.length; i++) logits[i] = classify(images[i], null);
        return logits;
    }

    /**
     * Classifies, then back-propagates logits[target] (the predicted class when target is negative) and
     * records in {@code trace} the gradients the attribution methods need, for the layers it wants:
     * Mamba models the gradient with respect to the residual stream entering each layer [T, D],
     * Transformers the gradient with respect to each layer's attention probabilities [H, T, T].
     * The forward pass is traced as {@link #classify} traces it. Returns the logits.
     */
    float[] classifyWithGradients(float[] pixels, int target, TraceRecorder trace);

    /** Refuses pixels that are not [C, S, S] for this model. */
    static void checkPixels(float[] pixels, int channels, int size) {
        if (pixels.length != channels * size * size) {
            throw new IllegalArgumentException("image of " + pixels.length + " values, the model takes [" + channels + ", " + size + ", " + size + "]");
        }
    }

    /** The class to explain: {@code target} when it is one, the arg max of the logits when negative. */
    static int checkTarget(int target, float[] logits) {
        if (target >= logits.length) {
            throw new IllegalArgumentException("class " + target + " is outside [0, " + logits.length + ")");
        }
        int best = 0;
        for (int k = 0; k < logits.length; k++) {
            if (!Float.isFinite(logits[k])) {      // no class to explain or to score: the weights are broken
                throw new IllegalArgumentException("the model computed " + logits[k] + " for class " + k
                        + ": its weights hold NaN or infinity, or overflow float32");
            }
            if (logits[k] > logits[best]) best = k;
        }
        return target >= 0 ? target : best;
    }

    @Override
    void close();
}
