package org.mambalens.xai.attention;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.cuda.GpuRequired;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.assertj.core.api.Assertions.assertThat;

/** The GPU layer summaries equal the CPU's (AttentionMaps.summary), one-way (the LM) and both ways (ViM), every layer. */
class HiddenAttentionCudaTest {
    @BeforeEach
    void gpu() {
        GpuRequired.check();
    }

    @ParameterizedTest
    @ValueSource(strings = {"mamba/tied_f32", "mamba/conv3_rank_given", "vim/vim_small"})
    void gpuSummariesEqualTheCpuSummaries(String name) {
        Path dir = Fixtures.golden().resolve(name);
        TraceRecorder trace = TraceRecorder.allLayers();
        int layers;
        try (var backend = GpuRequired.backend()) {
        if (name.startsWith("vim")) {
            Npy.Array pixels = Npy.readFloat32(dir.resolve("pixels.npy"));
            try (ImageClassifier model = Models.loadImageClassifier(dir)) {
                model.classify(Arrays.copyOf(pixels.data(), pixels.data().length / pixels.dim(0)), trace);
                layers = model.layers();
            }
        } else {
            try (LanguageModel lm = Models.loadLanguageModel(dir)) {
                lm.forward(new Random(2).ints(300, 0, lm.vocabSize()).toArray(), trace);   // several blocks of the CPU's tiling
                layers = lm.layers();
            }
        }
        for (int l = 0; l < layers; l++) {
            AttentionSummary cpu = AttentionMaps.summary(trace.layer(l), CpuBackend.INSTANCE), gpu = AttentionMaps.summary(trace.layer(l), backend);
            assertThat(Fixtures.relativeError(gpu.mean(), cpu.mean())).as("layer %d mean", l).isLessThan(1e-4);
            assertThat(Fixtures.relativeError(gpu.positiveMean(), cpu.positiveMean())).as("layer %d positive mean", l).isLessThan(1e-4);
            float scale = Math.max(Math.abs(cpu.min()), Math.abs(cpu.max()));
            assertThat(Math.abs(gpu.min() - cpu.min()) / scale).as("layer %d min", l).isLessThan(1e-4f);
            assertThat(Math.abs(gpu.max() - cpu.max()) / scale).as("layer %d max", l).isLessThan(1e-4f);
        }
        }
    }
}
