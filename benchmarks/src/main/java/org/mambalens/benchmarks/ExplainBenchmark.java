package org.mambalens.benchmarks;

import org.mambalens.engine.backend.CpuBackend;
import org.mambalens.engine.model.Families;
import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.LanguageModel;
import org.mambalens.engine.model.ModelFamily;
import org.mambalens.engine.model.Models;
import org.mambalens.engine.trace.TraceRecorder;
import org.mambalens.xai.attention.AttentionMaps;
import org.mambalens.xai.attention.AttentionSummary;
import org.mambalens.xai.methods.Explanations;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The explainability core on a recorded trace: every layer's hidden-attention summary (channel mean,
 * positive mean, min, max over [E, T, T]; Vision Mamba with both directions) and the rollout of the
 * explained row — what raw attention and rollout need. One operation = one image (or one prompt).
 * An image classifier's directory explains a random image; a language model's a prompt of {@code tokens} random ids.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 5)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx8g"})
public class ExplainBenchmark {
    @Param({"models/vim-fashion"})
    String model;

    @Param({"1024"})
    int tokens;

    TraceRecorder trace;
    int layers, row;

    @Setup(Level.Trial)
    public void trace() {
        Path dir = Path.of(model);
        trace = TraceRecorder.allLayers();
        Random r = new Random(4);
        if (Families.forDirectory(dir).kind() == ModelFamily.Kind.LANGUAGE) {
            try (LanguageModel lm = Models.loadLanguageModel(dir)) {
                int[] ids = new int[tokens];
                for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(lm.vocabSize());
                lm.forward(ids, trace);
                layers = lm.layers();
                row = tokens - 1;
            }
        } else {
            try (ImageClassifier c = Models.loadImageClassifier(dir)) {
                float[] pixels = new float[c.channels() * c.imageSize() * c.imageSize()];
                for (int i = 0; i < pixels.length; i++) pixels[i] = (float) r.nextGaussian();
                c.classify(pixels, trace);
                layers = c.layers();
                row = c.clsPosition();
            }
        }
    }

    @Benchmark
    public float[] summariesAndRollout() {
        List<AttentionSummary> summaries = new ArrayList<>();
        for (int l = 0; l < layers; l++) summaries.add(AttentionMaps.summary(trace.layer(l), CpuBackend.INSTANCE));
        return Explanations.rollout(summaries, layers * 15 / 24, row);
    }
}
