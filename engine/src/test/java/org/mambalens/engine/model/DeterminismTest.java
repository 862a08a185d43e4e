package org.mambalens.engine.model;

import org.junit.jupiter.api.Test;
import org.mambalens.engine.Fixtures;
import org.mambalens.engine.io.Npy;
import org.mambalens.engine.trace.TraceRecorder;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The promise of README's "Reproducibility": the same input, model and options give the same bits on one
 * machine — cold or warm JIT, run after run, one caller or sixteen sharing the model. (Across kernel
 * thread counts, which are fixed per JVM, ReliabilityTest runs separate JVMs.)
 */
class DeterminismTest {
    private static final int[] IDS = IntStream.range(0, 300).map(i -> (i * 37) % 120 + 3).toArray();

    @Test
    void theFirstCallOfAModelGivesTheSameBitsAsItsHundredthAndSixteenSharingCallers() throws Exception {
        try (LanguageModel lm = Models.loadLanguageModel(Fixtures.golden().resolve("mamba/tied_f32"))) {
            float[] cold = lm.forward(IDS, null);                            // before the kernels are compiled
            for (int i = 0; i < 100; i++) lm.forward(IDS, null);
            assertThat(lm.forward(IDS, null)).as("warm").isEqualTo(cold);
            ExecutorService pool = Executors.newFixedThreadPool(16);
            try {
                List<Future<float[]>> shared = new ArrayList<>();
                for (int t = 0; t < 16; t++) shared.add(pool.submit(() -> lm.forward(IDS, null)));
                for (Future<float[]> f : shared) assertThat(f.get()).as("shared by 16 threads").isEqualTo(cold);
            } finally {
                pool.shutdown();
            }
        }
    }

    @Test
    void gradientsAreTheSameRunAfterRun() {
        Path dir = Fixtures.golden().resolve("vim/vim_small");
        float[] pixels = Npy.readFloat32(dir.resolve("pixels.npy")).data();
        try (ImageClassifier model = Models.loadImageClassifier(dir)) {
            float[] pixel = Arrays.copyOf(pixels, model.channels() * model.imageSize() * model.imageSize());
            float[] first = null;
            for (int run = 0; run < 20; run++) {
                TraceRecorder trace = TraceRecorder.allLayers();
                model.classifyWithGradients(pixel, -1, trace);
                if (first == null) first = trace.inputGradient();
                else assertThat(trace.inputGradient()).as("run " + run).isEqualTo(first);
            }
        }
    }
}
