package org.mambalens.engine.model;

import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.text.Sampler;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The reverse passes of Mamba-2 and RWKV-4 against central finite differences of their own forward passes, on the
 * golden fixtures' configs (F32 and BF16 weights, one and two groups, clamped Δ, biases). The input of one position
 * is moved without touching the rest of the model: the checkpoint gets extra embedding rows (ExtendedVocabulary),
 * the prompt's row at position t moved by ±h·r and ±(h/2)·r along a random direction r, and the token at t is
 * swapped for one of them. Each position's directional derivative ⟨∂logit/∂x_t, r⟩ is compared with the
 * Richardson-extrapolated difference (4·D(h/2) − D(h))/3, whose truncation error is O(h⁴).
 */
class RecurrentGradientsTest {
    /** Prompt length, random directions per position, step relative to the embedding rows' RMS. */
    private static final int TOKENS = 12, DIRECTIONS = 2;
    private static final double STEP = 0.05;

    @TempDir
    Path tmp;

    /**
     * Three explained outputs (the last position's prediction, a middle position's arbitrary token, position 0):
     * the directional derivatives of every position up to the explained one agree within 5e-4 of the largest;
     * after it the gradient is exactly 0 (a causal model), every layer's residual gradient is recorded, and layer
     * 0's is the input gradient. Why 5e-4: the forward runs in F32, so a logit z carries a rounding jitter of
     * δ ≈ 1e-6·|z| between nearby inputs, and a quotient over a step of h·|r| (h = 0.05 of the rows' RMS) carries
     * δ/h, a few 1e-5 of derivatives that are 0.1–1 here, tripled by the extrapolation; RWKV's squared ReLU has a
     * kink, where the difference converges as O(h²) rather than O(h⁴). Measured: Mamba-2 2e-5 … 5e-5, RWKV
     * 3e-5 … 1.6e-4, and smaller steps give less truncation but more jitter (0.025: up to 3.6e-4). A wrong term
     * in a reverse pass shows as 1e-2 or more.
     */
    @ParameterizedTest
    @ValueSource(strings = {"mamba2/mamba2_f32", "mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32", "rwkv/rwkv_bf16"})
    void inputGradientMatchesFiniteDifferences(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids")), TOKENS);
        float[] table = ExtendedVocabulary.table(dir);
        int V = Fixtures.json(dir.resolve("config.json")).get("vocab_size").asInt(), D = table.length / V;
        Random random = new Random(11);
        float[] rows = new float[TOKENS * DIRECTIONS * 4 * D];                // per (t, direction): x_t + h·r, x_t − h·r, x_t + h/2·r, x_t − h/2·r
        for (int t = 0; t < TOKENS; t++) {
            double rms = 0;
            for (int j = 0; j < D; j++) rms += (double) table[ids[t] * D + j] * table[ids[t] * D + j] / D;
            for (int k = 0; k < DIRECTIONS; k++) {
                double[] r = new double[D];
                for (int j = 0; j < D; j++) r[j] = random.nextGaussian() * Math.sqrt(rms);
                for (int s = 0; s < 4; s++) {
                    double step = (s % 2 == 0 ? 1 : -1) * (s < 2 ? STEP : STEP / 2);
                    for (int j = 0; j < D; j++) rows[(((t * DIRECTIONS + k) * 4) + s) * D + j] = (float) (table[ids[t] * D + j] + step * r[j]);
                }
            }
        }
        Path extended = ExtendedVocabulary.write(dir, tmp.resolve("extended"), rows);
        try (LanguageModel model = Models.loadLanguageModel(extended)) {
            int outputs = model.outputs();
            float[] last = Arrays.copyOfRange(model.forward(ids, null), (TOKENS - 1) * outputs, TOKENS * outputs);
            int[][] explained = {{TOKENS - 1, Sampler.argmax(Arrays.copyOf(last, V))}, {TOKENS / 2, 17}, {0, 123}};
            for (int[] e : explained) {
                int position = e[0], token = e[1];
                TraceRecorder trace = TraceRecorder.allLayers();
                float[] logits = model.forwardWithGradients(ids, position, token, trace);
                assertThat(Fixtures.relativeError(logits, Arrays.copyOfRange(model.forward(ids, null), position * outputs, (position + 1) * outputs)))
                        .isLessThan(1e-6);
                float[] g = trace.inputGradient();
                for (int j = (position + 1) * D; j < TOKENS * D; j++) assertThat(g[j]).as("causal: entry " + j).isZero();
                for (int l = 0; l < model.layers(); l++) assertThat(trace.residualGradient(l)).hasSize(TOKENS * D);
                assertThat(trace.residualGradient(0)).as("layer 0's input is the embeddings").isEqualTo(g);
                float[] analytic = new float[(position + 1) * DIRECTIONS], numeric = new float[analytic.length];
                for (int t = 0; t <= position; t++) {
                    for (int k = 0; k < DIRECTIONS; k++) {
                        int row = ((t * DIRECTIONS + k) * 4) * D;
                        double[] a = new double[2], n = new double[2];              // steps h and h/2: ⟨g, x₊ − x₋⟩ and f(x₊) − f(x₋), per unit h
                        for (int s = 0; s < 2; s++) {
                            double h = s == 0 ? STEP : STEP / 2;
                            int plus = row + 2 * s * D, minus = plus + D;
                            for (int j = 0; j < D; j++) a[s] += (double) g[t * D + j] * (rows[plus + j] - rows[minus + j]) / (2 * h);
                            n[s] = (logit(model, ids, t, V + plus / D, position, token) - logit(model, ids, t, V + minus / D, position, token)) / (2 * h);
                        }
                        analytic[t * DIRECTIONS + k] = (float) ((4 * a[1] - a[0]) / 3);
                        numeric[t * DIRECTIONS + k] = (float) ((4 * n[1] - n[0]) / 3);
                    }
                }
                double error = Fixtures.relativeError(analytic, numeric);
                assertThat(error).as(fixture + " position " + position + " token " + token).isLessThan(5e-4);
            }
        }
    }

    /** A GPU model's reverse pass runs on the CPU view of its checkpoint: the same gradients as a CPU model's (skipped without a GPU). */
    @ParameterizedTest
    @ValueSource(strings = {"mamba2/mamba2_groups_bf16", "rwkv/rwkv_f32"})
    void gradientsOfAGpuModelEqualThoseOfACpuModel(String fixture) {
        org.mambalens.engine.cuda.GpuRequired.check();
        Path dir = Fixtures.golden().resolve(fixture);
        int[] ids = Arrays.copyOf(Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids")), TOKENS);
        TraceRecorder onGpu = TraceRecorder.allLayers(), onCpu = TraceRecorder.allLayers();
        try (LanguageModel gpu = Models.loadLanguageModel(dir, Device.CUDA, org.mambalens.engine.backend.Precision.F32);
             LanguageModel cpu = Models.loadLanguageModel(dir)) {
            assertThat(gpu.forwardWithGradients(ids, TOKENS - 1, 5, onGpu)).containsExactly(cpu.forwardWithGradients(ids, TOKENS - 1, 5, onCpu));
            assertThat(onGpu.inputGradient()).containsExactly(onCpu.inputGradient());
        }
    }

    /** The logit of {@code token} at {@code position} with the token at {@code t} swapped for {@code id}. */
    private static double logit(LanguageModel model, int[] ids, int t, int id, int position, int token) {
        int[] moved = ids.clone();
        moved[t] = id;
        return model.forward(moved, null)[position * model.outputs() + token];
    }
}
