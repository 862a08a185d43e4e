package org.mambalens.engine.model;

import org.mambalens.engine.backend.TopTwo;
import org.mambalens.engine.text.Sampler;

import java.util.Arrays;

/**
 * Several prompts continued together: each prompt is prefilled alone into its sequence of a {@link LanguageModel.Batch},
 * then every step advances all unfinished sequences at once, and each sequence stops on its own, at the end-of-sequence
 * token or at its budget. With the same options and a sampler seeded as it would be alone, every sequence gets the ids it
 * gets generated alone. When every sampler is greedy, a step asks only for each sequence's two most likely tokens
 * ({@link LanguageModel#stepTopTwo}): the first, or the second while the end-of-sequence token is not yet allowed.
 */
public final class BatchGeneration {

    /**
     * How every sequence generates: at most {@code maxNewTokens}; never the end-of-sequence token before
     * {@code minNewTokens}; stopping at it when {@code stopAtEos}.
     */
    public record Options(int maxNewTokens, int minNewTokens, boolean stopAtEos) {
        public Options {
            if (maxNewTokens < 0 || minNewTokens < 0) throw new IllegalArgumentException("negative token counts");
        }
    }

    /** The logits of a prompt's sequence held a NaN or an infinity. */
    public static final class NonFiniteLogits extends IllegalStateException {
        private final int prompt;

        NonFiniteLogits(int prompt) {
            super("the logits of prompt " + (prompt + 1) + " hold NaN or an infinity");
            this.prompt = prompt;
        }

        /** The prompt's index, from 0. */
        public int prompt() {
            return prompt;
        }
    }

    private BatchGeneration() {
    }

    /** The new ids of each prompt (prompt excluded), in the prompts' order; {@code samplers[i]} picks sequence i's tokens. */
    public static int[][] generate(LanguageModel lm, int[][] prompts, Sampler[] samplers, Options options) {
        int n = prompts.length, eos = lm.eosTokenId(), outputs = lm.outputs();
        if (samplers.length != n) throw new IllegalArgumentException(samplers.length + " samplers for " + n + " prompts");
        boolean greedy = Arrays.stream(samplers).allMatch(Sampler::isGreedy);
        LanguageModel.Batch batch = lm.newBatch(n);
        float[][] logits = new float[n][];
        int[][] generated = new int[n][];
        int[] count = new int[n], topTwo = new int[2 * n];
        for (int i = 0; i < n; i++) {
            logits[i] = lm.prefill(prompts[i], batch.sequence(i));
            if (greedy) System.arraycopy(TopTwo.of(logits[i], 1, outputs), 0, topTwo, 2 * i, 2);
            generated[i] = new int[Math.min(options.maxNewTokens(), 1024)];   // grown as tokens come
        }
        boolean[] done = new boolean[n];
        Arrays.fill(done, options.maxNewTokens() == 0);
        while (true) {
            int[] next = new int[n];
            boolean running = false;
            for (int i = 0; i < n; i++) {
                next[i] = -1;
                if (done[i]) continue;
                boolean eosBanned = count[i] < options.minNewTokens();
                int id;
                if (greedy) {
                    if (topTwo[2 * i] < 0) throw new NonFiniteLogits(i);
                    id = eosBanned && topTwo[2 * i] == eos ? topTwo[2 * i + 1] : topTwo[2 * i];
                } else {
                    for (float v : logits[i]) if (!Float.isFinite(v)) throw new NonFiniteLogits(i);
                    if (eosBanned) logits[i][eos] = Float.NEGATIVE_INFINITY;
                    id = samplers[i].next(logits[i]);
                }
                if (count[i] == generated[i].length) generated[i] = Arrays.copyOf(generated[i], Math.min(options.maxNewTokens(), 2 * count[i]));
                generated[i][count[i]++] = id;
                done[i] = (id == eos && options.stopAtEos()) || count[i] == options.maxNewTokens();
                if (!done[i]) {
                    next[i] = id;
                    running = true;
                }
            }
            if (!running) break;
            if (greedy) {
                topTwo = lm.stepTopTwo(next, batch);
            } else {
                float[] all = lm.step(next, batch);
                for (int i = 0; i < n; i++) if (next[i] >= 0) logits[i] = Arrays.copyOfRange(all, i * outputs, (i + 1) * outputs);
            }
        }
        for (int i = 0; i < n; i++) generated[i] = Arrays.copyOf(generated[i], count[i]);
        return generated;
    }
}
