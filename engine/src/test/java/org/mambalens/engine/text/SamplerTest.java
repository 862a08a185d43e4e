package org.mambalens.engine.text;

import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class SamplerTest {
    final float[] logits = {0.1f, 2.0f, 1.9f, -1f, 2.0f};

    @Test
    void greedyTakesTheFirstMaximum() {
        assertThat(Sampler.greedy().next(logits)).isEqualTo(1);
    }

    /** NaN compares false with everything: an argmax over it would quietly answer 0 (or whatever precedes it). */
    @Test
    void argmaxRefusesNaNAndInfiniteLogits() {
        assertThatThrownBy(() -> Sampler.argmax(new float[]{1f, Float.NaN, 0.5f})).hasMessageContaining("computed NaN for output 1");
        assertThatThrownBy(() -> Sampler.argmax(new float[]{1f, Float.POSITIVE_INFINITY})).hasMessageContaining("computed Infinity for output 1");
        assertThat(Sampler.argmax(new float[]{Float.NEGATIVE_INFINITY, -3f, Float.NEGATIVE_INFINITY})).as("masked tokens").isEqualTo(1);
        assertThatThrownBy(() -> Sampler.sampling(Float.POSITIVE_INFINITY, 0, 1f, 1)).hasMessageContaining("--temperature must be a finite number");
    }

    @Test
    void samplingIsRepeatableForASeedAndRespectsTopKAndTopP() {
        int[] a = new int[50], b = new int[50];
        Sampler s1 = Sampler.sampling(1f, 0, 1f, 42), s2 = Sampler.sampling(1f, 0, 1f, 42);
        for (int i = 0; i < 50; i++) {
            a[i] = s1.next(logits);
            b[i] = s2.next(logits);
        }
        assertThat(a).containsExactly(b);
        assertThat(a).contains(0, 2);                                         // it does sample, not argmax
        Sampler top2 = Sampler.sampling(1f, 2, 1f, 7);
        for (int i = 0; i < 200; i++) assertThat(top2.next(logits)).isIn(1, 4);
        Sampler nucleus = Sampler.sampling(1f, 0, 0.01f, 7);
        for (int i = 0; i < 50; i++) assertThat(nucleus.next(logits)).isEqualTo(1);
    }

    @Test
    void lowTemperatureConcentratesOnTheArgmax() {
        Sampler cold = Sampler.sampling(1e-3f, 0, 1f, 3);
        int hits = 0;
        for (int i = 0; i < 100; i++) if (cold.next(new float[]{0f, 1f, 0.5f}) == 1) hits++;
        assertThat(hits).isEqualTo(100);
    }

    @Test
    void rejectsNonsense() {
        assertThatThrownBy(() -> Sampler.sampling(0f, 0, 1f, 0)).hasMessageContaining("--temperature");
        assertThatThrownBy(() -> Sampler.sampling(1f, 0, 1.5f, 0)).hasMessageContaining("--top-p");
        assertThatThrownBy(() -> Sampler.sampling(1f, -1, 1f, 0)).hasMessageContaining("--top-k");
    }
}
