package org.mambalens.benchmarks;

import org.mambalens.engine.model.ImageClassifier;
import org.mambalens.engine.model.Models;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/** Forwards per second of an image classifier (ViM or ViT) over a batch of images (images per second: batch × the score). */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ClassifierBenchmark {
    @Param({"models/vim-fashion"})
    String model;
    @Param({"1"})
    int batch;

    ImageClassifier classifier;
    float[][] images;

    @Setup(Level.Trial)
    public void load() {
        classifier = Models.loadImageClassifier(Path.of(model));
        Random r = new Random(4);
        images = new float[batch][classifier.channels() * classifier.imageSize() * classifier.imageSize()];
        for (float[] pixels : images) for (int i = 0; i < pixels.length; i++) pixels[i] = (float) r.nextGaussian();
    }

    @TearDown(Level.Trial)
    public void close() {
        classifier.close();
    }

    @Benchmark
    public float[][] classify() {
        return classifier.classifyBatch(images);
    }
}
