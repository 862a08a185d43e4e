package org.mambalens.engine.text;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from logits: greedy (argmax, lowest id on ties), or sampling with temperature,
 * then top-k, then top-p (nucleus), from a seeded generator so that a run can be repeated.
 */
public final class Sampler {
    private final float temperature;
    private final int topK;
    private final float topP;
    private final SplittableRandom random;

    private Sampler(float temperature, int topK, float topP, long seed) {
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    public static Sampler greedy() {
        return new Sampler(0f, 0, 1f, 0);
    }

    /**
     * @param temperature > 0
     * @param topK        keep the k most likely tokens; 0 keeps all
     * @param topP        keep the smallest set whose probability reaches p; 1 keeps all
     */
    public static Sampler sampling(float temperature, int topK, float topP, long seed) {
        if (!(temperature > 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("--temperature must be a finite number > 0 (use --greedy for argmax), got " + temperature);
        }
        if (topK < 0) throw new IllegalArgumentException("--top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("--top-p must be in (0, 1], got " + topP);
        return new Sampler(temperature, topK, topP, seed);
    }

    /** Whether this sampler takes the most likely token (so that a decoder need not look at the other logits). */
    public boolean isGreedy() {
        return temperature == 0f;
    }

    public int next(float[] logits) {
        if (temperature == 0f) return argmax(logits);
        int v = logits.length;
        Integer[] order = new Integer[v];
        for (int i = 0; i < v; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
        int keep = topK > 0 ? Math.min(topK, v) : v;
        double max = logits[order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += p[i] = Math.exp((logits[order[i]] - max) / temperature);
        double cumulative = 0;
        int nucleus = keep;
        for (int i = 0; i < keep; i++) {
            cumulative += p[i] / sum;
            if (cumulative >= topP) {
                nucleus = i + 1;
                break;
            }
        }
        double total = 0;
        for (int i = 0; i < nucleus; i++) total += p[i];
        double r = random.nextDouble() * total;
        for (int i = 0; i < nucleus; i++) {
            r -= p[i];
            if (r <= 0) return order[i];
        }
        return order[nucleus - 1];
    }

    /**
     * The index of the largest logit (the lowest such index). Refuses NaN and +∞, whose order means nothing; −∞ is a
     * token masked out (a forced minimum length, an extended vocabulary's unused rows).
     */
    public static int argmax(float[] logits) {
        int best = 0;
        for (int i = 0; i < logits.length; i++) {
            if (Float.isNaN(logits[i]) || logits[i] == Float.POSITIVE_INFINITY) {
                throw new IllegalArgumentException("the model computed " + logits[i] + " for output " + i
                        + ": its weights hold NaN or infinity, or overflow float32");
            }
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }
}
