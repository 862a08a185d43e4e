package org.mambalens.engine.model;

import org.mambalens.engine.trace.TraceRecorder;

/** An image classifier over preprocessed pixels. */
public interface ImageClassifier extends AutoCloseable {
    int numClasses();

    int channels();

    int imageSize();

    /** Blocks (Mamba layers or Transformer layers). */
    int layers();

    /** Logits [classes] for one image, pixels [C, H, W] already preprocessed; optionally traced. */
    float[] classify(float[] pixels, TraceRecorder trace);

    @Override
    void close();
}
