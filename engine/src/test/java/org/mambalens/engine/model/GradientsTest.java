package org.mambalens.engine.model;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The whole reverse pass of each image classifier against finite differences of its forward pass:
 * the directional derivative of the explained logit along random pixel directions.
 */
class GradientsTest {
    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0", "vit/vit_small", "vit/vit_gray_odd", "trained/vim-fashion"})
    void inputGradientMatchesFiniteDifferences(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        Path modelDir = Files.isRegularFile(dir.resolve("config.json")) ? dir : Fixtures.repository().resolve("models").resolve(dir.getFileName());
        Npy.Array images = Npy.readFloat32(dir.resolve("pixels.npy"));
        int size = images.data().length / images.dim(0);
        float[] pixels = Arrays.copyOf(images.data(), size);
        try (ImageClassifier model = Models.loadImageClassifier(modelDir)) {
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.classifyWithGradients(pixels, -1, trace);
            int k = ImageClassifier.checkTarget(-1, logits);
            assertThat(Fixtures.relativeError(logits, model.classify(pixels, null))).isLessThan(1e-6);
            float[] grad = trace.inputGradient();
            Random random = new Random(3);
            for (int trial = 0; trial < 3; trial++) {
                float[] v = new float[size];
                for (int i = 0; i < size; i++) v[i] = (float) random.nextGaussian();
                double h = 1e-2, analytic = 0;
                for (int i = 0; i < size; i++) analytic += (double) grad[i] * v[i];
                double numeric = (model.classify(shift(pixels, v, h), null)[k] - model.classify(shift(pixels, v, -h), null)[k]) / (2 * h);
                assertThat(analytic).as(fixture + " trial " + trial).isCloseTo(numeric, org.assertj.core.data.Offset.offset(5e-3 * Math.max(1, Math.abs(numeric))));
            }
            for (int layer = 0; layer < model.layers(); layer++) {
                float[] g = model instanceof org.mambalens.engine.model.vit.ViTModel ? trace.attentionGradient(layer) : trace.residualGradient(layer);
                assertThat(g).as("layer " + layer).isNotEmpty();
            }
        }
    }

    /** Per-layer gradients and the pixel gradient against PyTorch autograd in float64 (gradient_fixtures.py). */
    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0", "vit/vit_small", "vit/vit_gray_odd", "trained/vim-fashion", "trained/vit-fashion"})
    void gradientsMatchAutograd(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        Path modelDir = Files.isRegularFile(dir.resolve("config.json")) ? dir : Fixtures.repository().resolve("models").resolve(dir.getFileName());
        Npy.Array images = Npy.readFloat32(dir.resolve("pixels.npy"));
        float[] pixels = Arrays.copyOf(images.data(), images.data().length / images.dim(0));
        int target = Fixtures.json(dir.resolve("grad_target.json")).get("target").asInt();
        try (ImageClassifier model = Models.loadImageClassifier(modelDir)) {
            TraceRecorder trace = TraceRecorder.allLayers();
            float[] logits = model.classifyWithGradients(pixels, -1, trace);
            assertThat(ImageClassifier.checkTarget(-1, logits)).isEqualTo(target);
            boolean transformer = model instanceof org.mambalens.engine.model.vit.ViTModel;
            Npy.Array expected = Npy.readFloat32(dir.resolve(transformer ? "grad_attention.npy" : "grad_residual.npy"));
            assertThat(stacked(transformer ? trace::attentionGradient : trace::residualGradient, expected))
                    .as(fixture + " per-layer gradients").isLessThan(1e-4);
            assertThat(Fixtures.relativeError(trace.inputGradient(), Npy.readFloat32(dir.resolve("grad_pixels.npy")).data()))
                    .as(fixture + " pixel gradient").isLessThan(1e-4);
        }
    }

    /**
     * The language models' residual-stream gradients for one output token against transformers + autograd
     * (Mamba in F32; GPT-NeoX in float64, whose ∂logit/∂A_h per layer and head are checked too).
     */
    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given", "gptneox/neox_parallel_f32", "gptneox/neox_sequential_bf16"})
    void languageModelGradientsMatchAutograd(String fixture) {
        Path dir = Fixtures.golden().resolve(fixture);
        var target = Fixtures.json(dir.resolve("grad_target.json"));
        int[] ids = Fixtures.ints(target.get("tokens"));
        try (LanguageModel model = Models.loadLanguageModel(dir)) {
            TraceRecorder trace = TraceRecorder.allLayers();
            model.forwardWithGradients(ids, target.get("position").asInt(), target.get("token").asInt(), trace);
            assertThat(stacked(trace::residualGradient, Npy.readFloat32(dir.resolve("grad_residual.npy")))).isLessThan(1e-4);
            if (fixture.startsWith("gptneox")) {
                // autograd also gives ∂logit/∂A at the masked (future) entries, where A is 0: the engine leaves them 0.
                Npy.Array expected = Npy.readFloat32(dir.resolve("grad_attention.npy"));
                int L = ids.length;
                for (int m = 0; m < expected.data().length / (L * L); m++) {
                    for (int r = 0; r < L; r++) java.util.Arrays.fill(expected.data(), m * L * L + r * L + r + 1, m * L * L + (r + 1) * L, 0f);
                }
                assertThat(stacked(trace::attentionGradient, expected)).isLessThan(1e-4);
            }
        }
    }

    /** The relative error of per-layer arrays stacked as the reference stacks them [layers, …]. */
    private static double stacked(java.util.function.IntFunction<float[]> perLayer, Npy.Array expected) {
        int layers = expected.dim(0), per = expected.data().length / layers;
        float[] actual = new float[expected.data().length];
        for (int l = 0; l < layers; l++) System.arraycopy(perLayer.apply(l), 0, actual, l * per, per);
        return Fixtures.relativeError(actual, expected.data());
    }

    static float[] shift(float[] x, float[] v, double h) {
        float[] out = x.clone();
        for (int i = 0; i < x.length; i++) out[i] += (float) (h * v[i]);
        return out;
    }
}
