package org.mambalens.engine.model;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The class an image explanation or evaluation takes: the one asked for, else the arg max; never one picked from NaN logits. */
class ImageClassifierTargetTest {
    @Test
    void theArgMaxUnlessAClassIsAskedFor() {
        float[] logits = {0.5f, 2f, 2f, -1f};
        assertThat(ImageClassifier.checkTarget(-1, logits)).isEqualTo(1);
        assertThat(ImageClassifier.checkTarget(3, logits)).isEqualTo(3);
        assertThatThrownBy(() -> ImageClassifier.checkTarget(4, logits)).hasMessage("class 4 is outside [0, 4)");
    }

    @Test
    void logitsThatAreNotNumbersAreRefused() {
        assertThatThrownBy(() -> ImageClassifier.checkTarget(-1, new float[]{1f, Float.NaN})).hasMessageContaining("computed NaN for class 1");
        assertThatThrownBy(() -> ImageClassifier.checkTarget(0, new float[]{Float.NEGATIVE_INFINITY, 1f}))
                .hasMessageContaining("computed -Infinity for class 0");
    }
}
