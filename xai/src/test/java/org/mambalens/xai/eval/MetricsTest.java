package org.mambalens.xai.eval;

import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.function.ToIntFunction;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

/**
 * The measures on hand-made maps with known answers. The "model" answers 1 while more than half of the
 * 20 pixels of its evidence region keep their value, else 0: a perfect map marks that region.
 */
class MetricsTest {
    static final int N = 100;
    static final boolean[] EVIDENCE = new boolean[N];

    static {
        for (int i = 30; i < 50; i++) EVIDENCE[i] = true;
    }

    static final ToIntFunction<float[]> MODEL = x -> {
        int kept = 0;
        for (int i = 0; i < N; i++) if (EVIDENCE[i] && x[i] == 1f) kept++;
        return kept > 10 ? 1 : 0;
    };

    static float[] ones() {
        float[] x = new float[N];
        java.util.Arrays.fill(x, 1f);
        return x;
    }

    static double auc(float[] map, boolean positive) {
        int[] kept = Metrics.perturbation(MODEL, ones(), map, positive, 1, 0f);
        double[] percent = new double[kept.length];
        for (int k = 0; k < kept.length; k++) percent[k] = 100.0 * kept[k];
        return Metrics.auc(percent);
    }

    @Test
    void perfectInvertedAndRandomMapsAreOrderedAsTheyMustBe() {
        float[] perfect = new float[N], inverted = new float[N], random = new float[N];
        Random r = new Random(1);
        for (int i = 0; i < N; i++) {
            perfect[i] = EVIDENCE[i] ? 1f + r.nextFloat() : r.nextFloat();
            inverted[i] = -perfect[i];
            random[i] = r.nextFloat();
        }
        // perfect: 10 % removed takes 10 of the 20 evidence pixels: the answer is gone from step 1 on
        assertThat(auc(perfect, true)).isCloseTo(5.0, offset(1e-9));       // trapezoid of 100 → 0 over the first 0.1
        assertThat(auc(perfect, false)).isCloseTo(90.0 - 0.05 * 100, offset(1e-9));   // kept through 80 %, gone at 90 %
        assertThat(auc(inverted, true)).isEqualTo(auc(perfect, false));
        assertThat(auc(random, true)).isBetween(auc(perfect, true), auc(perfect, false));
        assertThat(auc(random, false)).isBetween(auc(perfect, true), auc(perfect, false));

        assertThat(Metrics.averagePrecision(perfect, EVIDENCE)).isEqualTo(1.0);
        assertThat(Metrics.meanAveragePrecision(perfect, EVIDENCE)).isEqualTo(1.0);
        assertThat(Metrics.averagePrecision(inverted, EVIDENCE)).isLessThan(Metrics.averagePrecision(random, EVIDENCE));
        assertThat(Metrics.averagePrecision(random, EVIDENCE)).isBetween(0.1, 0.4);     // about the positives' share, 0.2
        Metrics.Confusion c = Metrics.confusion(perfect, EVIDENCE);
        assertThat(c.fn()).isZero();
        assertThat(Metrics.confusion(inverted, EVIDENCE).meanIoU()).isLessThan(c.meanIoU());
    }

    @Test
    void averagePrecisionCountsTiesTogetherAndAucIsTheTrapezoid() {
        // scores 3, 2, 2, 1 with labels 1, 0, 1, 0: thresholds give (R, P) = (½, 1), (1, ⅔), (1, ½)
        float[] scores = {3, 2, 2, 1};
        boolean[] labels = {true, false, true, false};
        assertThat(Metrics.averagePrecision(scores, labels)).isCloseTo(0.5 + 0.5 * 2 / 3.0, offset(1e-12));
        assertThat(Metrics.averagePrecision(scores, new boolean[4])).isNaN();
        double[] full = new double[Metrics.STEPS.length];
        java.util.Arrays.fill(full, 100);
        assertThat(Metrics.auc(full)).isCloseTo(90.0, offset(1e-9));
        assertThat(Metrics.removalOrder(new float[]{1, 3, 3, 0}, true)).containsExactly(1, 2, 0, 3);
        assertThat(Metrics.removalOrder(new float[]{1, 3, 3, 0}, false)).containsExactly(3, 0, 1, 2);
        assertThat(Metrics.removed(5, 784)).isEqualTo(392);
    }
}
