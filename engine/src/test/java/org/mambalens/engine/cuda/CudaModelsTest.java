package org.mambalens.engine.cuda;

import org.mambalens.engine.backend.Precision;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.Device;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.AttentionTrace;
import org.mambalens.engine.trace.MambaLayerTrace;
import org.mambalens.engine.trace.MixerTrace;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.Set;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The CUDA models against the references (transformers / PyTorch, the golden fixtures) and against the
 * CPU engine on the same checkpoints: logits within 1e-4 relative, greedy ids identical, decode equal
 * to the whole-sequence forward, traces equal. Run with -Dmambalens.cuda.poison=true (scripts/device-cuda.sh),
 * so that every activation buffer is NaN before each run.
 */
class CudaModelsTest {
    @BeforeEach
    void gpu() {
        GpuRequired.check();
    }

    static Path fixture(String name) {
        return Fixtures.golden().resolve(name);
    }

    static Path modelDir(String name) {
        return name.equals("demo") ? Fixtures.repository().resolve("models/mamba-fortunes") : fixture(name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/untied_bf16", "mamba/conv3_rank_given", "mamba/bias_untied_f16", "demo"})
    void mambaLogitsAndGreedyIdsMatchTransformersAndTheCpu(String name) {
        JsonNode ref = Fixtures.json(fixture(name).resolve("reference.json"));
        int[] ids = Fixtures.ints(ref.get("token_ids"));
        float[] expected = Npy.readFloat32(fixture(name).resolve("logits.npy")).data();
        int[] greedy = Fixtures.ints(ref.get("greedy_ids"));
        int[] prompt = Fixtures.ints(ref.has("greedy_prompt") ? ref.get("greedy_prompt") : ref.get("token_ids"));
        try (LanguageModel gpu = Models.loadLanguageModel(modelDir(name), Device.CUDA, Precision.F32);
             LanguageModel cpu = Models.loadLanguageModel(modelDir(name))) {
            assertThat(gpu.onGpu()).isTrue();
            float[] logits = gpu.forward(ids, null);
            assertThat(Fixtures.relativeError(logits, expected)).as("vs transformers").isLessThan(1e-4);
            assertThat(Fixtures.relativeError(logits, cpu.forward(ids, null))).as("vs the CPU engine").isLessThan(1e-4);
            assertThat(Fixtures.greedy(gpu, prompt, greedy.length)).containsExactly(greedy);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given", "mamba/bias_untied_f16"})
    void mambaDecodeThroughCapturedGraphsEqualsTheForwardPass(String name) {
        int[] ids = Fixtures.ints(Fixtures.json(fixture(name).resolve("reference.json")).get("token_ids"));
        try (LanguageModel gpu = Models.loadLanguageModel(modelDir(name), Device.CUDA, Precision.F32)) {
            Fixtures.assertDecodeEqualsForward(gpu, ids, 3, 7);
        }
    }

    @Test
    void aLongPromptPrefillsInChunksAsTheCpuDoes() {
        Path dir = fixture("mamba/tied_f32");
        int[] ids = new Random(5).ints(1300, 0, 100).toArray();
        try (LanguageModel gpu = Models.loadLanguageModel(dir, Device.CUDA, Precision.F32); LanguageModel cpu = Models.loadLanguageModel(dir)) {
            var gs = gpu.newState();
            var cs = cpu.newState();
            assertThat(Fixtures.relativeError(gpu.prefill(ids, gs), cpu.prefill(ids, cs))).isLessThan(1e-4);
            assertThat(Fixtures.relativeError(gpu.step(7, gs), cpu.step(7, cs))).isLessThan(1e-4);
            assertThat(gs.position()).isEqualTo(ids.length + 1);
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 300})     // the fixture's prompt (one-pass scan), then 300 tokens (the chunked scan)
    void mambaTraceEqualsTheCpuTrace(int randomTokens) {
        Path dir = fixture("mamba/conv3_rank_given");
        int[] ids = randomTokens == 0 ? Fixtures.ints(Fixtures.json(dir.resolve("reference.json")).get("token_ids"))
                : new Random(9).ints(randomTokens, 0, 100).toArray();
        assertThat(ids.length >= CudaKernels.PARALLEL_SCAN_TOKENS).isEqualTo(randomTokens > 0);
        TraceRecorder onGpu = TraceRecorder.allLayers(), onCpu = TraceRecorder.allLayers();
        try (LanguageModel gpu = Models.loadLanguageModel(dir, Device.CUDA, Precision.F32); LanguageModel cpu = Models.loadLanguageModel(dir)) {
            assertThat(Fixtures.relativeError(gpu.forward(ids, onGpu), cpu.forward(ids, onCpu))).isLessThan(1e-4);
            for (int layer = 0; layer < cpu.layers(); layer++) assertSameMixer(onGpu.layer(layer, MambaLayerTrace.class).forward(), onCpu.layer(layer, MambaLayerTrace.class).forward());
        }
    }

    static void assertSameMixer(MixerTrace g, MixerTrace c) {
        assertThat(Fixtures.relativeError(g.delta(), c.delta())).as("delta").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.b(), c.b())).as("B").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.c(), c.c())).as("C").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.s(), c.s())).as("s").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.u(), c.u())).as("u").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.x(), c.x())).as("x").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.z(), c.z())).as("z").isLessThan(1e-5);
        assertThat(Fixtures.relativeError(g.y(), c.y())).as("y").isLessThan(1e-5);
    }

    @ParameterizedTest
    @ValueSource(strings = {"vim/vim_small", "vim/vim_gray_cls0", "vit/vit_small", "vit/vit_gray_odd", "trained/vim-fashion", "trained/vit-fashion"})
    void imageClassifiersMatchTheReferenceAndTheCpuInOneBatch(String name) {
        float[] expected = Npy.readFloat32(fixture(name).resolve("logits.npy")).data();
        float[][] images = images(name);
        int n = images.length;
        try (ImageClassifier gpu = Models.loadImageClassifier(imageModelDir(name), Device.CUDA, Precision.F32);
             ImageClassifier cpu = Models.loadImageClassifier(imageModelDir(name))) {
            float[] batch = flatten(gpu.classifyBatch(images));
            assertThat(Fixtures.relativeError(batch, expected)).as("batch vs reference").isLessThan(1e-4);
            assertThat(Fixtures.relativeError(batch, flatten(cpu.classifyBatch(images)))).as("batch vs CPU").isLessThan(1e-4);
            float[] one = gpu.classify(images[n - 1], null);                // a smaller batch reuses the larger buffers
            assertThat(Fixtures.relativeError(one, cpu.classify(images[n - 1], null))).as("one image vs CPU").isLessThan(1e-4);

            TraceRecorder onGpu = TraceRecorder.layers(Set.of(0)), onCpu = TraceRecorder.layers(Set.of(0));
            gpu.classify(images[0], onGpu);
            cpu.classify(images[0], onCpu);
            if (name.contains("vim")) {
                for (TraceRecorder.Direction d : TraceRecorder.Direction.values()) assertSameMixer(onGpu.layer(0, MambaLayerTrace.class).scan(d), onCpu.layer(0, MambaLayerTrace.class).scan(d));
            } else {
                assertThat(Fixtures.relativeError(onGpu.layer(0, AttentionTrace.class).probs(), onCpu.layer(0, AttentionTrace.class).probs())).isLessThan(1e-5);
            }
        }
    }

    /** An image fixture's model: the golden directory, or for "trained/NAME" the bundled models/NAME. */
    static Path imageModelDir(String name) {
        return name.startsWith("trained/") ? Fixtures.repository().resolve("models/" + name.substring(8)) : fixture(name);
    }

    /** The fixture's pixels.npy, one array per image. */
    static float[][] images(String name) {
        Npy.Array pixels = Npy.readFloat32(fixture(name).resolve("pixels.npy"));
        int n = pixels.dim(0), size = pixels.data().length / n;
        float[][] images = new float[n][];
        for (int i = 0; i < n; i++) images[i] = Arrays.copyOfRange(pixels.data(), i * size, (i + 1) * size);
        return images;
    }

    static float[] flatten(float[][] rows) {
        int k = rows[0].length;
        float[] out = new float[rows.length * k];
        for (int i = 0; i < rows.length; i++) System.arraycopy(rows[i], 0, out, i * k, k);
        return out;
    }
}
